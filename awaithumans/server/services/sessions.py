"""Signing in and out, and the first operator: shared by the JSON API and the dashboard.

Sessions end when they should: on sign-out; everywhere at once when the person asks, or an
operator does; and, apart from the one in use, when the password changes (a thief's
session must not outlive the password it was opened with).
"""

from __future__ import annotations

import logging
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
from awaithumans.server.principals import Principal
from awaithumans.server.security import (
    hash_password_async,
    hash_token,
    needs_rehash,
    tokens_equal,
    too_many,
    validate_new_password,
    verify_password_async,
)
from awaithumans.server.services.writer import Write

log = logging.getLogger("awaithumans.server")


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


async def end_sessions(conn: AsyncConnection, user_id: str, *, keep: str | None = None) -> int:
    """Revoke every live session of ``user_id`` (handoff ones too) but ``keep``; how many.

    Revoked, not deleted: the rows stay for the record, and the session check refuses them.
    """
    now = utcnow()
    query = update(SessionRow).where(
        SessionRow.user_id == user_id,
        SessionRow.revoked_at.is_(None),
        SessionRow.expires_at > now,
    )
    if keep is not None:
        query = query.where(SessionRow.id != keep)
    result = await conn.execute(query.values(revoked_at=now))
    return int(result.rowcount)


class EndSessions(Write[int]):
    """Sign ``user_id`` out everywhere (but ``keep``): the number of sessions ended."""

    def __init__(self, user_id: str, keep: str | None = None) -> None:
        self.user_id = user_id
        self.keep = keep

    async def apply(self, conn: AsyncConnection) -> int:
        return await end_sessions(conn, self.user_id, keep=self.keep)


class ChangePassword(Write[bool]):
    """A user's new password hash, and the end of their other sessions, in one commit.

    False when the user is gone or deactivated meanwhile (nothing changes then).
    """

    def __init__(self, user_id: str, password_hash: str, keep: str | None) -> None:
        self.user_id = user_id
        self.password_hash = password_hash
        self.keep = keep
        self.ended = 0

    async def apply(self, conn: AsyncConnection) -> bool:
        changed = await conn.execute(
            update(UserRow)
            .where(UserRow.id == self.user_id, UserRow.is_active.is_(True))
            .values(password_hash=self.password_hash, updated_at=utcnow())
        )
        if changed.rowcount != 1:
            return False
        self.ended = await end_sessions(conn, self.user_id, keep=self.keep)
        return True


class UpgradeHash(Write[None]):
    """Replace a password hash made with older parameters by one made with the current.

    Only if the stored hash is still the one that was checked: a password changed meanwhile
    is not overwritten by the old password's new hash.
    """

    def __init__(self, user_id: str, checked_hash: str, new_hash: str) -> None:
        self.user_id = user_id
        self.checked_hash = checked_hash
        self.new_hash = new_hash

    async def apply(self, conn: AsyncConnection) -> None:
        await conn.execute(
            update(UserRow)
            .where(UserRow.id == self.user_id, UserRow.password_hash == self.checked_hash)
            .values(password_hash=self.new_hash, updated_at=utcnow())
        )


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

    ``ip`` is the client's address: failures are throttled per account and per address
    (:class:`~awaithumans.server.security.LoginThrottle`). Raises ``ApiError`` 429 with
    ``Retry-After`` when throttled (the password is not even checked) and 401 for any wrong
    credential (one message for an unknown email and a wrong password, so neither is
    revealed).
    """
    throttle = ctx.login_throttle
    email = email.strip().lower()
    wait = throttle.attempt(ip, email)
    if wait is not None:
        raise too_many(wait, "Too many failed sign-ins")
    async with ctx.engine.connect() as conn:
        user = (
            (await conn.execute(select(UserRow.__table__).where(UserRow.email == email)))
            .mappings()
            .one_or_none()
        )
    # verify_password_async runs a dummy hash for unknown users: equal timing either way.
    ok = await verify_password_async(user["password_hash"] if user else None, password)
    if not ok or user is None or not user["is_active"]:
        raise ApiError(401, ErrorCode.INVALID_CREDENTIALS, "Wrong email or password.")
    throttle.record_success(ip, email)
    stored = user["password_hash"]
    if stored and needs_rehash(stored):
        # Hashes carry their parameters: one made before they were raised is replaced now,
        # while the password is at hand (security/passwords.py).
        fresh = await hash_password_async(password)
        await ctx.writer.submit(UpgradeHash(user["id"], stored, fresh))
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


def log_sessions_ended(user_id: str, ended: int, why: str) -> None:
    """The security log's line for sessions ended other than by signing out: user
    directory changes have no audit table (the audit trail is per task), so the server's
    log is their record."""
    log.info("sessions of %s ended (%d): %s", user_id, ended, why)


async def sign_out_everywhere(ctx: ServerContext, who: Principal) -> int:
    """End every session of ``who`` (the one in use too); how many were live."""
    ended = await ctx.writer.submit(EndSessions(who.id))
    log_sessions_ended(who.id, ended, "signed out everywhere")
    return ended


async def end_sessions_of(ctx: ServerContext, user_id: str, by: Principal) -> int:
    """An operator ends ``user_id``'s sessions (their own included, if it is them)."""
    ended = await ctx.writer.submit(EndSessions(user_id))
    log_sessions_ended(user_id, ended, f"by operator {by.id}")
    return ended


async def change_own_password(
    ctx: ServerContext,
    who: Principal,
    *,
    session_id: str | None,
    ip: str,
    current: str,
    new: str,
) -> int:
    """``who`` changes their password; their other sessions end, this one stays.

    The current password is asked for, and its failures throttled like sign-ins: a session
    left open on someone else's screen must not become a new password. Returns how many
    other sessions ended.

    Raises:
        ApiError: 429 when throttled; 403 ``INVALID_CREDENTIALS`` for a wrong current
            password (or a user without one); 422 ``WEAK_PASSWORD``. Nothing changes then.
    """
    email = (who.email or "").lower()
    wait = ctx.login_throttle.attempt(ip, email)
    if wait is not None:
        raise too_many(wait, "Too many wrong passwords")
    async with ctx.engine.connect() as conn:
        stored = await conn.scalar(select(UserRow.password_hash).where(UserRow.id == who.id))
    if not await verify_password_async(stored, current):
        raise ApiError(403, ErrorCode.INVALID_CREDENTIALS, "That is not your current password.")
    ctx.login_throttle.record_success(ip, email)
    try:
        validate_new_password(new)
    except ValueError as exc:
        raise ApiError(422, ErrorCode.WEAK_PASSWORD, str(exc)) from None
    write = ChangePassword(who.id, await hash_password_async(new), keep=session_id)
    if not await ctx.writer.submit(write):
        raise ApiError(403, ErrorCode.INVALID_CREDENTIALS, "This account is not active.")
    log_sessions_ended(who.id, write.ended, "password changed")
    return write.ended
