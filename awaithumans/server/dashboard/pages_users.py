"""Operator pages: the user directory (/users, /users/{id}), roles, pools and delegation.

Writes go through the same services as the JSON admin API (``SaveUser``), so the same rules
hold everywhere: no duplicate emails, and the server never loses its last active operator.
Forms post back and answer 303 on success or re-render with the problems at their fields.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from slack_sdk.errors import SlackApiError
from sqlalchemy import RowMapping, select
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from awaithumans.core._codes import ErrorCode
from awaithumans.server.dashboard.access import PageError, ctx_of, require_operator
from awaithumans.server.dashboard.admin_common import (
    EMAIL_PATTERN,
    EMAIL_TAKEN_MESSAGE,
    LAST_OPERATOR_MESSAGE,
    MAX_EMAIL,
    MAX_NAME,
    MAX_SLACK_ID,
    SLACK_ID_PATTERN,
    checked,
    first_error,
    notice,
    operator_form,
    raw_field,
    text_field,
)
from awaithumans.server.dashboard.delegation_form import (
    DelegationForm,
    delegation_view,
    read_delegation_form,
    save_delegation,
)
from awaithumans.server.dashboard.render import render
from awaithumans.server.db.models import UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.errors import ApiError
from awaithumans.server.notify.slack import SlackChannel
from awaithumans.server.notify.slack.workspace import Member, NoWorkspace
from awaithumans.server.security import hash_password_async, validate_new_password
from awaithumans.server.services.directory import (
    SaveUser,
)
from awaithumans.server.services.memberships import (
    KINDS,
    GroupKind,
    Groups,
    clean_names,
    groups_of_users,
)
from awaithumans.server.services.sessions import (
    end_sessions_of,
    log_sessions_ended,
    new_user_id,
)
from awaithumans.server.web import session_id

router = APIRouter(include_in_schema=False)

_USER_FIELDS = (
    "display_name",
    "email",
    "is_operator",
    "password",
    "slack_user_id",
    "roles",
    "pools",
)
# This page's own notices after a redirect (admin_common.NOTICES has the shared ones).
_NOTICES = {
    "delegated": "Delegation saved: their new tasks go to the delegate until they are back.",
    "delegation-ended": "Delegation ended: new tasks go to them again.",
}
# Roles and pools are typed as one line: names split on commas or spaces.
_NAME_SEPARATORS = re.compile(r"[,\s]+")


def _sign_in_method(row: RowMapping) -> str:
    if row["password_hash"] is not None and row["email"]:
        return "Password"
    if row["email"]:
        # Someone a task was mailed to, whom nobody added: say where they came from.
        return "Email links (added by a mail)" if row["added_by"] == "email" else "Email-only"
    if row["slack_user_id"]:
        return "Slack-only"
    return "None"


def _user_view(row: RowMapping, groups: Groups | None = None) -> dict[str, Any]:
    groups = groups or Groups()
    away = row["away_until"] is not None and row["away_until"] > utcnow()
    return {
        "id": row["id"],
        "email": row["email"],
        "display_name": row["display_name"],
        "is_operator": bool(row["is_operator"]),
        "is_active": bool(row["is_active"]),
        "slack_user_id": row["slack_user_id"],
        "has_password": row["password_hash"] is not None,
        "sign_in": _sign_in_method(row),
        "created_at": row["created_at"],
        "roles": sorted(groups.roles),
        "pools": sorted(groups.pools),
        "away_until": row["away_until"] if away else None,
    }


async def _all_users(request: Request) -> list[dict[str, Any]]:
    async with ctx_of(request).engine.connect() as conn:
        rows = (
            (await conn.execute(select(UserRow.__table__).order_by(UserRow.created_at)))
            .mappings()
            .all()
        )
        groups = await groups_of_users(conn, [r["id"] for r in rows])
    return [_user_view(r, groups.get(r["id"])) for r in rows]


async def _one_user(request: Request, user_id: str) -> dict[str, Any]:
    async with ctx_of(request).engine.connect() as conn:
        row = (
            (await conn.execute(select(UserRow.__table__).where(UserRow.id == user_id)))
            .mappings()
            .one_or_none()
        )
        groups = await groups_of_users(conn, [user_id])
    if row is None:
        raise PageError(404, "No such user", "That user does not exist (check the link).")
    return _user_view(row, groups.get(user_id))


def _active_operators(users: list[dict[str, Any]]) -> int:
    return sum(1 for u in users if u["is_operator"] and u["is_active"])


@dataclass
class _UserForm:
    """A submitted add/edit form: cleaned values (to re-render) and problems by field."""

    values: dict[str, Any]
    password: str = ""
    remove_password: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    groups: dict[GroupKind, list[str]] = field(default_factory=dict)


def _read_user_form(
    form: FormData, *, had_password: bool, editing: bool, members: Sequence[Member] = ()
) -> _UserForm:
    got = _UserForm(
        values={
            "display_name": text_field(form, "display_name"),
            "email": text_field(form, "email").lower(),
            "slack_user_id": text_field(form, "slack_user_id").upper(),
            "is_operator": checked(form, "is_operator"),
            "roles": text_field(form, "roles"),
            "pools": text_field(form, "pools"),
        },
        password=raw_field(form, "password"),
        remove_password=editing and checked(form, "remove_password"),
    )
    values, errors = got.values, got.errors
    for kind in KINDS:
        if f"{kind}s" not in form:
            continue  # a form without the field (an older page) leaves the list as it is
        typed = values[f"{kind}s"]
        try:
            got.groups[kind] = clean_names([n for n in _NAME_SEPARATORS.split(typed) if n], kind)
        except ApiError as exc:
            errors[f"{kind}s"] = exc.message
    picked = next((m for m in members if m.id == text_field(form, "slack_member")), None)
    if picked is not None:
        # The Slack member picker: its member, and their name and email where left empty.
        values["slack_user_id"] = values["slack_user_id"] or picked.id
        values["display_name"] = values["display_name"] or picked.display_name
        values["email"] = values["email"] or (picked.email or "")
    for name in ("display_name", "email", "slack_user_id", "password"):
        value = got.password if name == "password" else values[name]
        if "\x00" in value:
            errors[name] = "Contains a character that cannot be stored."
    name, email, slack = values["display_name"], values["email"], values["slack_user_id"]
    if not name:
        errors.setdefault("display_name", "Enter the name people will see.")
    elif len(name) > MAX_NAME:
        errors.setdefault("display_name", f"Keep it to {MAX_NAME} characters or fewer.")
    if email and (len(email) > MAX_EMAIL or not EMAIL_PATTERN.match(email)):
        errors.setdefault(
            "email", "Enter an email address like name@example.com, or leave it empty."
        )
    if slack and (len(slack) > MAX_SLACK_ID or not SLACK_ID_PATTERN.match(slack)):
        errors.setdefault(
            "slack_user_id",
            "A Slack member id looks like U012AB3CD (in Slack: the person's profile, "
            "⋯ menu, Copy member ID).",
        )
    if not email and not slack and not errors.keys() & {"email", "slack_user_id"}:
        errors["email"] = (
            "Give an email, a Slack member id, or both, so this person can be reached."
        )
    if got.password:
        try:
            validate_new_password(got.password)
        except ValueError as exc:
            errors.setdefault("password", str(exc))
        if got.remove_password:
            errors.setdefault("password", "Either set a new password or remove it, not both.")
        elif not email and "email" not in errors:
            errors.setdefault(
                "password",
                "Signing in with a password needs an email: add one, or leave the password "
                "empty for a Slack-only reviewer.",
            )
    elif had_password and not got.remove_password and not email and "email" not in errors:
        errors["email"] = (
            "This user signs in with a password, which needs an email. Keep an email, or "
            "tick “Remove password”."
        )
    return got


async def _slack_members(request: Request) -> list[Member] | str | None:
    """Members of the Slack workspace for the picker (cached ``users.list``): None without
    Slack, a sentence when Slack cannot be asked now."""
    channel = ctx_of(request).handlers.get("slack")
    if not isinstance(channel, SlackChannel):
        return None
    try:
        workspace = await channel.workspaces.for_team(None)
        return await asyncio.wait_for(workspace.directory.members(), 5)
    except (NoWorkspace, SlackApiError, TimeoutError, OSError) as exc:
        return f"Slack's member list is not available now ({type(exc).__name__})."


def _users_page(
    request: Request,
    users: list[dict[str, Any]],
    *,
    members: list[Member] | str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    errors = errors or {}
    return render(
        request,
        "users.html",
        {
            "members": members if isinstance(members, list) else None,
            "members_error": members if isinstance(members, str) else None,
            "users": users,
            "active_operators": _active_operators(users),
            "values": values or {},
            "errors": errors,
            "first_error": first_error(errors, _USER_FIELDS),
            "notice": None if errors else notice(request),
        },
        status_code=status_code,
    )


async def _edit_page(
    request: Request,
    target: dict[str, Any],
    *,
    active_operators: int,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    delegation: DelegationForm | None = None,
    status_code: int = 200,
) -> Response:
    errors = errors or {}
    last_operator = target["is_operator"] and target["is_active"] and active_operators <= 1
    derrors = delegation.errors if delegation else {}
    return render(
        request,
        "user_edit.html",
        {
            "target": target,
            "values": values if values is not None else target,
            "errors": errors,
            "first_error": first_error(errors, _USER_FIELDS),
            "alert": alert,
            "last_operator": last_operator,
            "notice": None
            if errors or alert or derrors
            else notice(request) or _NOTICES.get(request.query_params.get("done", "")),
            "d": await delegation_view(ctx_of(request).engine, target["id"]),
            "derrors": derrors,
            "dvalues": delegation.shown if delegation else {},
        },
        status_code=status_code,
    )


@router.get("/users")
async def users_page(request: Request) -> Response:
    await require_operator(request)
    return _users_page(request, await _all_users(request), members=await _slack_members(request))


@router.post("/users")
async def add_user(request: Request) -> Response:
    posted = await operator_form(request, "/users")
    if isinstance(posted, Response):
        return posted
    _who, form = posted
    ctx = ctx_of(request)
    members = await _slack_members(request)
    known = members if isinstance(members, list) else []
    got = _read_user_form(form, had_password=False, editing=False, members=known)
    if not got.errors:
        v = got.values
        refusal = await ctx.writer.submit(
            SaveUser(
                new_user_id(),
                {
                    "email": v["email"] or None,
                    "display_name": v["display_name"],
                    "is_operator": v["is_operator"],
                    "is_active": True,
                    "slack_user_id": v["slack_user_id"] or None,
                    "password_hash": (
                        await hash_password_async(got.password) if got.password else None
                    ),
                },
                create=True,
                groups=got.groups,
            )
        )
        if refusal is None:
            return RedirectResponse("/users?done=added", status_code=303)
        got.errors["email"] = EMAIL_TAKEN_MESSAGE  # the only refusal a create can get
    status = 409 if got.errors.get("email") == EMAIL_TAKEN_MESSAGE else 400
    return _users_page(
        request,
        await _all_users(request),
        members=members,
        values=got.values,
        errors=got.errors,
        status_code=status,
    )


@router.get("/users/{user_id}")
async def edit_user_page(request: Request, user_id: str) -> Response:
    await require_operator(request)
    target = await _one_user(request, user_id)
    return await _edit_page(
        request, target, active_operators=_active_operators(await _all_users(request))
    )


@router.post("/users/{user_id}")
async def edit_user(request: Request, user_id: str) -> Response:
    back = f"/users/{quote(user_id, safe='')}"
    posted = await operator_form(request, back)
    if isinstance(posted, Response):
        return posted
    who, form = posted
    ctx = ctx_of(request)
    target = await _one_user(request, user_id)
    got = _read_user_form(form, had_password=target["has_password"], editing=True)
    alert = None
    if not got.errors:
        v = got.values
        changes: dict[str, Any] = {
            "display_name": v["display_name"],
            "email": v["email"] or None,
            "slack_user_id": v["slack_user_id"] or None,
            "is_operator": v["is_operator"],
        }
        if got.password:
            changes["password_hash"] = await hash_password_async(got.password)
        elif got.remove_password:
            changes["password_hash"] = None
        # A new password ends the user's other sessions; the operator's own stays.
        save = SaveUser(
            user_id,
            changes,
            create=False,
            keep_session=session_id(request),
            groups=got.groups,
        )
        refusal = await ctx.writer.submit(save)
        if refusal is None:
            if "password_hash" in changes:
                log_sessions_ended(user_id, save.sessions_ended, f"password set by {who.id}")
            if user_id == who.id and not v["is_operator"]:
                return RedirectResponse("/", status_code=303)  # no longer allowed on /users
            done = "saved-signed-out" if save.sessions_ended else "saved"
            return RedirectResponse(f"/users?done={done}", status_code=303)
        if refusal is ErrorCode.USER_NOT_FOUND:
            raise PageError(404, "No such user", "That user does not exist any more.")
        if refusal is ErrorCode.EMAIL_TAKEN:
            got.errors["email"] = EMAIL_TAKEN_MESSAGE
        else:
            alert = LAST_OPERATOR_MESSAGE
            got.errors["is_operator"] = LAST_OPERATOR_MESSAGE
    users = await _all_users(request)
    return await _edit_page(
        request,
        target,
        active_operators=_active_operators(users),
        values=got.values,
        errors=got.errors,
        alert=alert,
        status_code=409 if alert or got.errors.get("email") == EMAIL_TAKEN_MESSAGE else 400,
    )


async def _set_active(request: Request, user_id: str, active: bool) -> Response:
    back = f"/users/{quote(user_id, safe='')}"
    posted = await operator_form(request, back)
    if isinstance(posted, Response):
        return posted
    who, _form = posted
    ctx = ctx_of(request)
    # Deactivating also ends their sessions, in the same commit (SaveUser): refused anyway
    # while deactivated, they must not come back to life on reactivation.
    refusal = await ctx.writer.submit(SaveUser(user_id, {"is_active": active}, create=False))
    if refusal is ErrorCode.USER_NOT_FOUND:
        raise PageError(404, "No such user", "That user does not exist (check the link).")
    if refusal is not None:
        target = await _one_user(request, user_id)
        return await _edit_page(
            request,
            target,
            active_operators=_active_operators(await _all_users(request)),
            alert=LAST_OPERATOR_MESSAGE,
            status_code=409,
        )
    if user_id == who.id and not active:
        return RedirectResponse("/login", status_code=303)  # that was our own session
    done = "reactivated" if active else "deactivated"
    return RedirectResponse(f"{back}?done={done}", status_code=303)


@router.post("/users/{user_id}/deactivate")
async def deactivate_user(request: Request, user_id: str) -> Response:
    return await _set_active(request, user_id, False)


@router.post("/users/{user_id}/reactivate")
async def reactivate_user(request: Request, user_id: str) -> Response:
    return await _set_active(request, user_id, True)


@router.post("/users/{user_id}/delegation")
async def set_delegation(request: Request, user_id: str) -> Response:
    """Away until ... -> delegate to ..., or end it, for anyone (operators)."""
    back = f"/users/{quote(user_id, safe='')}"
    posted = await operator_form(request, back)
    if isinstance(posted, Response):
        return posted
    _who, form = posted
    target = await _one_user(request, user_id)  # 404 for an unknown id, before any write
    got = read_delegation_form(form)
    if not got.errors:
        refusal = await save_delegation(ctx_of(request).writer, user_id, got)
        if refusal is None:
            done = "delegated" if got.values.get("delegate_to_user_id") else "delegation-ended"
            return RedirectResponse(f"{back}?done={done}#away", status_code=303)
        if refusal is ErrorCode.USER_NOT_FOUND:
            raise PageError(404, "No such user", "That user does not exist any more.")
    return await _edit_page(
        request,
        target,
        active_operators=_active_operators(await _all_users(request)),
        delegation=got,
        status_code=400,
    )


@router.post("/users/{user_id}/sign-out")
async def sign_out_user(request: Request, user_id: str) -> Response:
    """End every session of the user (a lost laptop, a shared screen): they sign in again."""
    back = f"/users/{quote(user_id, safe='')}"
    posted = await operator_form(request, back)
    if isinstance(posted, Response):
        return posted
    who, _form = posted
    await _one_user(request, user_id)  # 404 for an unknown id, before anything is written
    await end_sessions_of(ctx_of(request), user_id, who)
    if user_id == who.id:
        return RedirectResponse("/login", status_code=303)  # that was our own session too
    return RedirectResponse(f"{back}?done=signed-out", status_code=303)


# -- settings -----------------------------------------------------------------------------
