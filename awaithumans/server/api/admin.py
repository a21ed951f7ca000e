"""Operator endpoints: the user directory, agent keys, and webhook deliveries."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._codes import ErrorCode
from awaithumans.server.api.deps import Ctx, Operator
from awaithumans.server.api.errors import error_responses
from awaithumans.server.db.models import AgentKeyRow, UserRow
from awaithumans.server.errors import ApiError
from awaithumans.server.security import hash_password_async, validate_new_password
from awaithumans.server.services.directory import (
    CreateAgentKey,
    RevokeAgentKey,
    SaveUser,
)
from awaithumans.server.services.memberships import (
    MAX_GROUPS,
    GroupKind,
    Groups,
    clean_names,
    groups_of_users,
)
from awaithumans.server.services.outbox_rows import Redeliver, list_jobs
from awaithumans.server.web import session_id

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    responses=error_responses(400, 401, 403, 404, 409, 413, 422),
)

Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class UserOut(BaseModel):
    id: str
    email: str | None
    display_name: str
    is_operator: bool
    is_active: bool
    slack_user_id: str | None
    has_password: bool
    created_at: datetime
    #: "email" for a reviewer the server added when a task was mailed to a new address.
    added_by: str | None = None
    #: Role and pool names (``assign_to={"role": ...}``, ``approvers=["role:..."]``).
    roles: list[str] = []
    pools: list[str] = []
    #: While this is in the future, new tasks for this person go to ``delegate_to_user_id``.
    away_until: datetime | None = None
    delegate_to_user_id: str | None = None


# Names are checked by memberships.clean_names (400 INVALID_MEMBERSHIP, as the issue asks
# for a bad name), so the lists take any JSON here; their length is bounded first.
GroupList = Annotated[list[Any], Field(max_length=MAX_GROUPS * 2)]


class UserIn(BaseModel):
    email: Email | None = None
    display_name: str = Field(min_length=1, max_length=200)
    is_operator: bool = False
    password: str | None = Field(default=None, max_length=1024)
    slack_user_id: str | None = Field(default=None, max_length=32, pattern=r"^[UW][A-Z0-9]{2,}$")
    roles: GroupList = []
    pools: GroupList = []


class UserPatch(BaseModel):
    email: Email | None = None
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    is_operator: bool | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, max_length=1024)
    slack_user_id: str | None = Field(default=None, max_length=32, pattern=r"^[UW][A-Z0-9]{2,}$")
    #: Each replaces the whole list; omit to keep it.
    roles: GroupList | None = None
    pools: GroupList | None = None
    #: Set both to delegate (a time zone is required), or either to null to end it.
    away_until: AwareDatetime | None = None
    delegate_to_user_id: str | None = Field(default=None, max_length=32)


def _user_out(row: UserRow, groups: Groups | None = None) -> UserOut:
    groups = groups or Groups()
    return UserOut(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        is_operator=row.is_operator,
        is_active=row.is_active,
        slack_user_id=row.slack_user_id,
        has_password=row.password_hash is not None,
        added_by=row.added_by,
        created_at=row.created_at,
        roles=sorted(groups.roles),
        pools=sorted(groups.pools),
        away_until=row.away_until,
        delegate_to_user_id=row.delegate_to_user_id,
    )


_REFUSALS = {
    ErrorCode.EMAIL_TAKEN: (409, "Another user already has that email."),
    ErrorCode.USER_NOT_FOUND: (404, "No such user."),
    ErrorCode.LAST_OPERATOR: (409, "This is the last active operator; promote someone else first."),
    ErrorCode.INVALID_DELEGATE: (400, "That delegation is not possible."),
}


def _raise_refusal(code: ErrorCode | None, save: SaveUser | None = None) -> None:
    if code is not None:
        status, message = _REFUSALS[code]
        raise ApiError(status, code, save.problem if save and save.problem else message)


def _groups_in(roles: list[Any] | None, pools: list[Any] | None) -> dict[GroupKind, list[str]]:
    """The lists a request replaces, checked before anything is written."""
    groups: dict[GroupKind, list[str]] = {}
    if roles is not None:
        groups["role"] = clean_names(roles, "role")
    if pools is not None:
        groups["pool"] = clean_names(pools, "pool")
    return groups


def _delegation_in(body: UserPatch) -> dict[str, Any]:
    """The delegation columns a patch sets: both given, or both cleared by a null."""
    if not body.model_fields_set & {"away_until", "delegate_to_user_id"}:
        return {}
    if body.away_until is not None and body.delegate_to_user_id is not None:
        return {"away_until": body.away_until, "delegate_to_user_id": body.delegate_to_user_id}
    if body.away_until is None and body.delegate_to_user_id is None:
        return {"away_until": None, "delegate_to_user_id": None}
    raise ApiError(
        400,
        ErrorCode.INVALID_DELEGATE,
        "Give both away_until and delegate_to_user_id to delegate, or null to end it.",
    )


async def _password_hash(password: str | None) -> str | None:
    if password is None:
        return None
    try:
        validate_new_password(password)
    except ValueError as exc:
        raise ApiError(422, ErrorCode.WEAK_PASSWORD, str(exc)) from None
    return await hash_password_async(password)


async def _users_out(conn: AsyncConnection, rows: list[UserRow]) -> list[UserOut]:
    groups = await groups_of_users(conn, [r.id for r in rows])
    return [_user_out(r, groups.get(r.id)) for r in rows]


async def _get_user(ctx: Ctx, user_id: str) -> UserOut:
    async with ctx.engine.connect() as conn:
        row = (await conn.execute(select(UserRow).where(UserRow.id == user_id))).one_or_none()
        if row is None:
            raise ApiError(404, ErrorCode.USER_NOT_FOUND, "No such user.")
        (out,) = await _users_out(conn, [UserRow(**row._mapping)])
    return out


@router.get("/users", response_model=list[UserOut])
async def list_users(ctx: Ctx, _op: Operator) -> list[UserOut]:
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(select(UserRow).order_by(UserRow.created_at))).all()
        return await _users_out(conn, [UserRow(**r._mapping) for r in rows])


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(body: UserIn, ctx: Ctx, _op: Operator) -> UserOut:
    if body.email is None and body.slack_user_id is None:
        raise ApiError(
            422,
            ErrorCode.USER_UNREACHABLE,
            "A user needs an email or a Slack member id to be reachable.",
        )
    groups = _groups_in(body.roles, body.pools)
    user_id = "usr_" + secrets.token_hex(12)
    values: dict[str, Any] = {
        "email": body.email.strip().lower() if body.email else None,
        "display_name": body.display_name.strip(),
        "is_operator": body.is_operator,
        "is_active": True,
        "slack_user_id": body.slack_user_id,
        "password_hash": await _password_hash(body.password),
    }
    _raise_refusal(await ctx.writer.submit(SaveUser(user_id, values, create=True, groups=groups)))
    return await _get_user(ctx, user_id)


# Fields with no "no value": an explicit null for them would reach the database as a
# NOT NULL violation (a 500), or mean nothing (roles, pools: send []). email and
# slack_user_id may be cleared with null.
_NOT_NULLABLE = ("display_name", "is_operator", "is_active", "roles", "pools")


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: str, body: UserPatch, request: Request, ctx: Ctx, _op: Operator
) -> UserOut:
    values: dict[str, Any] = body.model_dump(
        exclude_unset=True,
        exclude={"password", "roles", "pools", "away_until", "delegate_to_user_id"},
    )
    nulled = [
        name
        for name in _NOT_NULLABLE
        if name in body.model_fields_set and getattr(body, name) is None
    ]
    if nulled:
        raise ApiError(
            422,
            ErrorCode.VALIDATION_ERROR,
            f"Invalid request: {nulled[0]}: may not be null",
            details=[
                {"loc": [n], "msg": "may not be null", "type": "null_forbidden"} for n in nulled
            ],
        )
    groups = _groups_in(body.roles, body.pools)
    values.update(_delegation_in(body))
    if values.get("email"):
        values["email"] = values["email"].strip().lower()
    if body.password is not None:
        values["password_hash"] = await _password_hash(body.password)
    # A new password ends the user's sessions, but the one making this request.
    save = SaveUser(user_id, values, create=False, keep_session=session_id(request), groups=groups)
    _raise_refusal(await ctx.writer.submit(save), save)
    return await _get_user(ctx, user_id)


@router.delete("/users/{user_id}", response_model=UserOut)
async def deactivate_user(user_id: str, ctx: Ctx, _op: Operator) -> UserOut:
    _raise_refusal(await ctx.writer.submit(SaveUser(user_id, {"is_active": False}, create=False)))
    return await _get_user(ctx, user_id)


class AgentKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class AgentKeyCreated(AgentKeyOut):
    key: str = Field(description="The key itself. Shown once; store it now.")


class AgentKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


@router.get("/agent-keys", response_model=list[AgentKeyOut])
async def list_agent_keys(ctx: Ctx, _op: Operator) -> list[AgentKeyOut]:
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(select(AgentKeyRow).order_by(AgentKeyRow.created_at))).mappings()
        return [AgentKeyOut.model_validate(dict(r)) for r in rows]


@router.post("/agent-keys", response_model=AgentKeyCreated, status_code=201)
async def create_agent_key(body: AgentKeyIn, ctx: Ctx, op: Operator) -> AgentKeyCreated:
    made = await ctx.writer.submit(CreateAgentKey(body.name, op.owner_id))
    async with ctx.engine.connect() as conn:
        row = (
            (await conn.execute(select(AgentKeyRow).where(AgentKeyRow.id == made.id)))
            .mappings()
            .one()
        )
    return AgentKeyCreated(key=made.key, **AgentKeyOut.model_validate(dict(row)).model_dump())


@router.delete("/agent-keys/{key_id}", status_code=204)
async def revoke_agent_key(key_id: str, ctx: Ctx, _op: Operator) -> None:
    if not await ctx.writer.submit(RevokeAgentKey(key_id)):
        raise ApiError(404, ErrorCode.AGENT_KEY_NOT_FOUND, "No active agent key with that id.")
    ctx.auth.forget_keys()


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    task_id: str
    kind: str
    target: str
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None


@router.get("/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    ctx: Ctx,
    _op: Operator,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|skipped|failed)$")] = None,
    task_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    async with ctx.engine.connect() as conn:
        rows = await list_jobs(conn, status=status, task_id=task_id, limit=limit)
    return [DeliveryOut.model_validate({**dataclasses.asdict(r), "event": r.event}) for r in rows]


# The outbox id column is a 32-bit INTEGER on PostgreSQL (and 64-bit on SQLite): a larger
# id cannot exist, and binding one fails in the driver as a 500.
DeliveryId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/deliveries/{delivery_id}/redeliver", status_code=202)
async def redeliver(delivery_id: DeliveryId, ctx: Ctx, _op: Operator) -> dict[str, str]:
    if not await ctx.writer.submit(Redeliver(delivery_id)):
        raise ApiError(404, ErrorCode.DELIVERY_NOT_FOUND, "No delivery with that id.")
    ctx.wake.outbox()
    return {"status": "queued"}
