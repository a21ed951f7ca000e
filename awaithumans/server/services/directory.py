"""The user directory and agent keys: writes shared by the API and the CLI."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from awaithumans.core._codes import ErrorCode
from awaithumans.server.db.models import AgentKeyRow, UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import Principal
from awaithumans.server.security import generate_agent_key
from awaithumans.server.services.delegation import delegation_problem
from awaithumans.server.services.memberships import GroupKind, replace_groups
from awaithumans.server.services.sessions import end_sessions
from awaithumans.server.services.writer import Write


@dataclass(frozen=True, slots=True)
class NewAgentKey:
    id: str
    name: str
    prefix: str
    key: str  # shown once; only its hash is stored


async def create_agent_key(conn: AsyncConnection, name: str, created_by: str | None) -> NewAgentKey:
    full, prefix, digest = generate_agent_key()
    key_id = "key_" + secrets.token_hex(8)
    await conn.execute(
        insert(AgentKeyRow).values(
            id=key_id,
            name=name,
            prefix=prefix,
            token_hash=digest,
            created_at=utcnow(),
            created_by=created_by,
            revoked_at=None,
        )
    )
    return NewAgentKey(id=key_id, name=name, prefix=prefix, key=full)


class CreateAgentKey(Write[NewAgentKey]):
    def __init__(self, name: str, created_by: str | None) -> None:
        self.name = name
        self.created_by = created_by

    async def apply(self, conn: AsyncConnection) -> NewAgentKey:
        return await create_agent_key(conn, self.name, self.created_by)


class RevokeAgentKey(Write[bool]):
    def __init__(self, key_id: str) -> None:
        self.key_id = key_id

    async def apply(self, conn: AsyncConnection) -> bool:
        result = await conn.execute(
            update(AgentKeyRow)
            .where(AgentKeyRow.id == self.key_id, AgentKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return result.rowcount == 1


async def active_operators(conn: AsyncConnection) -> int:
    return int(
        await conn.scalar(
            select(func.count())
            .select_from(UserRow)
            .where(UserRow.is_operator.is_(True), UserRow.is_active.is_(True))
        )
        or 0
    )


class SaveUser(Write[ErrorCode | None]):
    """Insert or update a directory user; refuses to leave the server without an operator.

    Returns None on success or a refusal code (``problem`` says more for
    ``INVALID_DELEGATE``). A new (or removed) password ends the user's sessions but
    ``keep_session`` (the one making the change), and deactivating ends them all, in the
    same commit. ``groups`` replaces the whole list of each kind it names (names already
    checked with ``memberships.clean_names``); a delegation in ``values``
    (``delegate_to_user_id`` with ``away_until``) is checked against the directory as it is
    in this transaction.
    """

    def __init__(
        self,
        user_id: str,
        values: dict[str, Any],
        *,
        create: bool,
        keep_session: str | None = None,
        groups: dict[GroupKind, list[str]] | None = None,
    ) -> None:
        self.user_id = user_id
        self.values = values
        self.create = create
        self.keep_session = keep_session
        self.groups = groups or {}
        self.sessions_ended = 0
        self.problem: str | None = None

    async def apply(self, conn: AsyncConnection) -> ErrorCode | None:
        email = self.values.get("email")
        if email is not None:
            clash = await conn.scalar(
                select(UserRow.id).where(UserRow.email == email, UserRow.id != self.user_id)
            )
            if clash is not None:
                return ErrorCode.EMAIL_TAKEN
        delegate = self.values.get("delegate_to_user_id")
        if delegate is not None:
            self.problem = await delegation_problem(
                conn, self.user_id, delegate, self.values["away_until"], utcnow()
            )
            if self.problem is not None:
                return ErrorCode.INVALID_DELEGATE
        if self.create:
            now = utcnow()
            await conn.execute(
                insert(UserRow).values(
                    id=self.user_id, created_at=now, updated_at=now, **self.values
                )
            )
            await self._save_groups(conn)
            return None
        current = (
            (await conn.execute(select(UserRow.__table__).where(UserRow.id == self.user_id)))
            .mappings()
            .one_or_none()
        )
        if current is None:
            return ErrorCode.USER_NOT_FOUND
        loses_operator = (
            current["is_operator"]
            and current["is_active"]
            and (self.values.get("is_operator") is False or self.values.get("is_active") is False)
        )
        if loses_operator and await active_operators(conn) <= 1:
            return ErrorCode.LAST_OPERATOR
        await conn.execute(
            update(UserRow)
            .where(UserRow.id == self.user_id)
            .values(updated_at=utcnow(), **self.values)
        )
        await self._save_groups(conn)
        if self.values.get("is_active") is False:
            self.sessions_ended = await end_sessions(conn, self.user_id)
        elif "password_hash" in self.values:
            self.sessions_ended = await end_sessions(conn, self.user_id, keep=self.keep_session)
        return None

    async def _save_groups(self, conn: AsyncConnection) -> None:
        for kind, names in self.groups.items():
            await replace_groups(conn, self.user_id, kind, names)


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """An active directory user, as channels that meet people elsewhere need them."""

    id: str
    email: str | None
    display_name: str
    is_operator: bool
    slack_user_id: str | None


def as_principal(
    user: DirectoryUser, *, fallback_name: str | None = None, scope_task_id: str | None = None
) -> Principal:
    """A directory user as the answer path sees them, met in a channel (Slack, a mail).

    The audit's name falls back from the display name to the email to ``fallback_name``
    (a Slack handle). With ``scope_task_id`` (a signed link for one task) they act on that
    task alone, and never with operator rights a link cannot prove."""
    name = user.display_name or user.email or fallback_name or user.id
    return Principal(
        kind="user",
        id=user.id,
        label=user.email or name,
        is_operator=user.is_operator and scope_task_id is None,
        email=user.email,
        display_name=name,
        scope_task_id=scope_task_id,
    )


def _directory_user(row: Any) -> DirectoryUser:
    return DirectoryUser(row.id, row.email, row.display_name, row.is_operator, row.slack_user_id)


async def user_by_slack_id(engine: AsyncEngine, slack_user_id: str) -> DirectoryUser | None:
    """The active directory user linked to a Slack member, if any."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(UserRow).where(
                    UserRow.slack_user_id == slack_user_id, UserRow.is_active.is_(True)
                )
            )
        ).first()
    return _directory_user(row) if row is not None else None


async def user_by_email(engine: AsyncEngine, email: str) -> tuple[DirectoryUser, bool] | None:
    """The directory user with this email (any case) and whether they are active."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(UserRow).where(func.lower(UserRow.email) == email.lower()))
        ).first()
    return (_directory_user(row), bool(row.is_active)) if row is not None else None


async def active_user(engine: AsyncEngine, user_id: str) -> DirectoryUser | None:
    """The directory user ``user_id``, if still active."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(UserRow).where(UserRow.id == user_id, UserRow.is_active.is_(True))
            )
        ).first()
    return _directory_user(row) if row is not None else None


class LinkSlackMember(Write[DirectoryUser | None]):
    """Link a Slack member to the active directory user with their email, if that user has
    no Slack member yet (the member's first click in Slack)."""

    def __init__(self, email: str, slack_user_id: str) -> None:
        self.email = email.lower()
        self.slack_user_id = slack_user_id

    async def apply(self, conn: AsyncConnection) -> DirectoryUser | None:
        linked = await conn.execute(
            update(UserRow)
            .where(
                func.lower(UserRow.email) == self.email,
                UserRow.slack_user_id.is_(None),
                UserRow.is_active.is_(True),
            )
            .values(slack_user_id=self.slack_user_id, updated_at=utcnow())
        )
        if linked.rowcount != 1:
            return None
        row = (
            await conn.execute(select(UserRow).where(UserRow.slack_user_id == self.slack_user_id))
        ).first()
        return _directory_user(row) if row is not None else None


class ReviewerByEmail(Write[DirectoryUser | None]):
    """The active directory user with this email; someone new is added as a passwordless
    reviewer (``added_by``: the channel), so the links mailed to them can sign them in for
    the tasks sent to them. A deactivated user stays out: None.

    Lookup and insert run in one write, so two tasks mailed at once to a new address add
    one person."""

    def __init__(self, email: str, added_by: str) -> None:
        self.email = email.lower()
        self.added_by = added_by

    async def apply(self, conn: AsyncConnection) -> DirectoryUser | None:
        row = (
            await conn.execute(select(UserRow).where(func.lower(UserRow.email) == self.email))
        ).first()
        if row is not None:
            return _directory_user(row) if row.is_active else None
        now = utcnow()
        user_id = "usr_" + secrets.token_hex(12)
        await conn.execute(
            insert(UserRow).values(
                id=user_id,
                email=self.email,
                display_name=self.email,
                password_hash=None,
                is_operator=False,
                is_active=True,
                added_by=self.added_by,
                created_at=now,
                updated_at=now,
            )
        )
        return DirectoryUser(user_id, self.email, self.email, False, None)
