"""Signing in and out, and the first operator: shared by the JSON API and the dashboard."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._codes import ErrorCode
from awaithumans.server.bootstrap import SETUP_TOKEN_KEY, operator_exists, stored_setup_hash
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import ServerStateRow, SessionRow, UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.errors import ApiError
from awaithumans.server.security import (
    hash_password_async,
    hash_token,
    tokens_equal,
    validate_new_password,
    verify_password_async,
)
from awaithumans.server.services.writer import Write


def new_user_id() -> str:
    return "usr_" + secrets.token_hex(12)


class CreateFirstOperator(Write[ErrorCode | None]):
    """Creates the first operator and burns the setup token, atomically."""

    def __init__(self, token_hash: str, values: dict[str, object]) -> None:
        self.token_hash = token_hash
        self.values = values

    async def apply(self, conn: AsyncConnection) -> ErrorCode | None:
        stored = await stored_setup_hash(conn)
        if stored is None or not tokens_equal(stored, self.token_hash):
            return ErrorCode.INVALID_SETUP_TOKEN
        if await operator_exists(conn):
            return ErrorCode.SETUP_ALREADY_DONE
        taken = await conn.scalar(select(UserRow.id).where(UserRow.email == self.values["email"]))
        if taken is not None:
            self.values["id"] = taken
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


class InsertSession(Write[None]):
    def __init__(self, values: dict[str, object]) -> None:
        self.values = values

    async def apply(self, conn: AsyncConnection) -> None:
        await conn.execute(insert(SessionRow).values(self.values))


class RevokeSession(Write[None]):
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id

    async def apply(self, conn: AsyncConnection) -> None:
        await conn.execute(
            update(SessionRow).where(SessionRow.id == self.session_id).values(revoked_at=utcnow())
        )


async def create_first_operator(
    ctx: ServerContext, *, token: str, email: str, display_name: str, password: str
) -> dict[str, Any]:
    """The first operator, through the one-shot setup token. Raises ``ApiError``."""
    try:
        validate_new_password(password)
    except ValueError as exc:
        raise ApiError(422, ErrorCode.WEAK_PASSWORD, str(exc)) from None
    now = utcnow()
    values: dict[str, object] = {
        "id": new_user_id(),
        "email": email.strip().lower(),
        "display_name": display_name.strip(),
        "password_hash": await hash_password_async(password),
        "is_operator": True,
        "is_active": True,
        "slack_user_id": None,
        "created_at": now,
        "updated_at": now,
    }
    refusal = await ctx.writer.submit(CreateFirstOperator(hash_token(token), values))
    if refusal is ErrorCode.SETUP_ALREADY_DONE:
        raise ApiError(409, refusal, "An operator already exists; sign in instead.")
    if refusal is not None:
        raise ApiError(403, refusal, "This setup link is not valid (it works only once).")
    return values


async def sign_in(
    ctx: ServerContext, ip: str, email: str, password: str
) -> tuple[Mapping[str, Any], str]:
    """Check a password and open a session: (user row, session cookie value).

    ``ip`` is the client's address: failures are throttled per (address, email).
    Raises ``ApiError`` 429 when throttled and 401 for any wrong credential (one message
    for an unknown email and a wrong password, so neither is revealed).
    """
    throttle = ctx.login_throttle
    email = email.strip().lower()
    wait = throttle.check(ip, email)
    if wait is not None:
        raise ApiError(
            429,
            ErrorCode.RATE_LIMITED,
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
    ok = await verify_password_async(user["password_hash"] if user else None, password)
    if not ok or user is None or not user["is_active"]:
        throttle.record_failure(ip, email)
        raise ApiError(401, ErrorCode.INVALID_CREDENTIALS, "Wrong email or password.")
    throttle.record_success(ip, email)
    return dict(user), await open_session(ctx, user["id"])


async def open_session(
    ctx: ServerContext,
    user_id: str,
    *,
    task_id: str | None = None,
    until: datetime | None = None,
) -> str:
    """Store a new session for ``user_id``; returns the signed cookie value.

    ``task_id`` scopes it to that one task (a signed handoff link), until ``until``.
    """
    session = ctx.auth.new_session_values(user_id, task_id, until)
    await ctx.writer.submit(InsertSession(session))
    expires = session["expires_at"]
    assert hasattr(expires, "timestamp")
    return ctx.auth.session_cookie_value(str(session["id"]), user_id, int(expires.timestamp()))


async def sign_out(ctx: ServerContext, session_id: str | None) -> None:
    """Revoke a session (if there is one)."""
    if session_id:
        await ctx.writer.submit(RevokeSession(session_id))
