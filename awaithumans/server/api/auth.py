"""First operator setup, login, logout, and who-am-I."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.server.api.deps import Ctx, optional_principal
from awaithumans.server.auth import SESSION_COOKIE
from awaithumans.server.bootstrap import SETUP_TOKEN_KEY, operator_exists, stored_setup_hash
from awaithumans.server.db.models import ServerStateRow, SessionRow, UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.errors import ApiError, error_responses
from awaithumans.server.principals import Principal
from awaithumans.server.security import (
    LoginThrottle,
    hash_password_async,
    hash_token,
    tokens_equal,
    validate_new_password,
    verify_password_async,
)
from awaithumans.server.services.writer import Write

router = APIRouter(
    prefix="/api",
    tags=["auth"],
    responses=error_responses(400, 401, 403, 409, 413, 422, 429),
)

Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class SetupRequest(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    email: Email
    display_name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class LoginRequest(BaseModel):
    email: Email
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    kind: str
    id: str
    email: str | None = None
    display_name: str | None = None
    is_operator: bool


def new_user_id() -> str:
    return "usr_" + secrets.token_hex(12)


class CreateFirstOperator(Write[str | None]):
    """Creates the first operator and burns the setup token, atomically."""

    def __init__(self, token_hash: str, values: dict[str, object]) -> None:
        self.token_hash = token_hash
        self.values = values

    async def apply(self, conn: AsyncConnection) -> str | None:
        stored = await stored_setup_hash(conn)
        if stored is None or not tokens_equal(stored, self.token_hash):
            return "INVALID_SETUP_TOKEN"
        if await operator_exists(conn):
            return "SETUP_ALREADY_DONE"
        taken = await conn.scalar(select(UserRow.id).where(UserRow.email == self.values["email"]))
        if taken is not None:
            await conn.execute(
                update(UserRow)
                .where(UserRow.id == taken)
                .values(
                    is_operator=True,
                    is_active=True,
                    password_hash=self.values["password_hash"],
                    display_name=self.values["display_name"],
                    updated_at=utcnow(),
                )
            )
        else:
            await conn.execute(insert(UserRow).values(self.values))
        await conn.execute(delete(ServerStateRow).where(ServerStateRow.key == SETUP_TOKEN_KEY))
        return None


class InsertRow(Write[None]):
    def __init__(self, table: type[SessionRow] | type[UserRow], values: dict[str, object]) -> None:
        self.table = table
        self.values = values

    async def apply(self, conn: AsyncConnection) -> None:
        await conn.execute(insert(self.table).values(self.values))


class RevokeSession(Write[None]):
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id

    async def apply(self, conn: AsyncConnection) -> None:
        await conn.execute(
            update(SessionRow).where(SessionRow.id == self.session_id).values(revoked_at=utcnow())
        )


@router.post("/setup/operator", status_code=201, response_model=Me)
async def setup_operator(body: SetupRequest, ctx: Ctx) -> Me:
    try:
        validate_new_password(body.password)
    except ValueError as exc:
        raise ApiError(422, "WEAK_PASSWORD", str(exc)) from None
    now = utcnow()
    values: dict[str, object] = {
        "id": new_user_id(),
        "email": body.email.strip().lower(),
        "display_name": body.display_name.strip(),
        "password_hash": await hash_password_async(body.password),
        "is_operator": True,
        "is_active": True,
        "slack_user_id": None,
        "created_at": now,
        "updated_at": now,
    }
    refusal = await ctx.writer.submit(CreateFirstOperator(hash_token(body.token), values))
    if refusal == "SETUP_ALREADY_DONE":
        raise ApiError(409, refusal, "An operator already exists; sign in instead.")
    if refusal is not None:
        raise ApiError(403, refusal, "This setup link is not valid (it works only once).")
    return Me(
        kind="user",
        id=str(values["id"]),
        email=str(values["email"]),
        display_name=str(values["display_name"]),
        is_operator=True,
    )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/auth/login", response_model=Me)
async def login(body: LoginRequest, request: Request, ctx: Ctx) -> Response:
    throttle: LoginThrottle = request.app.state.login_throttle
    ip, email = _client_ip(request), body.email.strip().lower()
    wait = throttle.check(ip, email)
    if wait is not None:
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"Too many failed sign-ins; try again in {int(wait) + 1}s.",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    async with ctx.engine.connect() as conn:
        user = (
            (await conn.execute(select(UserRow.__table__).where(UserRow.email == email)))
            .mappings()
            .one_or_none()
        )
    # verify_password_async runs a dummy hash for unknown users: equal timing either way.
    ok = await verify_password_async(user["password_hash"] if user else None, body.password)
    if not ok or user is None or not user["is_active"]:
        throttle.record_failure(ip, email)
        raise ApiError(401, "INVALID_CREDENTIALS", "Wrong email or password.")
    throttle.record_success(ip, email)
    assert ctx.auth is not None
    session = ctx.auth.new_session_values(user["id"])
    await ctx.writer.submit(InsertRow(SessionRow, session))
    expires = session["expires_at"]
    cookie = ctx.auth.session_cookie_value(
        str(session["id"]),
        user["id"],
        int(expires.timestamp()),  # type: ignore[attr-defined]
    )
    me = Me(
        kind="user",
        id=user["id"],
        email=user["email"],
        display_name=user["display_name"],
        is_operator=user["is_operator"],
    )
    response = JSONResponse(me.model_dump())
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=ctx.settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookies_secure,
        path="/",
    )
    return response


@router.post("/auth/logout", status_code=204)
async def logout(
    request: Request,
    ctx: Ctx,
    who: Annotated[Principal | None, Depends(optional_principal)],
) -> Response:
    session_id = getattr(request.state, "session_id", None)
    if session_id:
        await ctx.writer.submit(RevokeSession(session_id))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", response_model=Me)
async def me(who: Annotated[Principal | None, Depends(optional_principal)]) -> Me:
    if who is None:
        raise ApiError(401, "UNAUTHORIZED", "Not signed in.")
    return Me(
        kind=who.kind,
        id=who.id,
        email=who.email,
        display_name=who.display_name or who.label,
        is_operator=who.is_operator,
    )
