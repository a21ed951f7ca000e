"""Routing a task to a role or a pool: ``assign_to={"role": "finance"}`` / ``{"pool": "tier1"}``.

The member picked is the active one assigned least recently (``users.last_assigned_at``,
never-assigned first, then by id), in the transaction that inserts the task, and their
``last_assigned_at`` moves on in that same transaction. So the members of a group take
turns: a batch of creates from the writer goes round the group in order, and so do
creates on other replicas.

Taking turns across replicas needs the picks of one group to be serialized, not just kept
apart. On PostgreSQL each group's picks take a transaction-level advisory lock named
after the group (:func:`_lock_key`), in sorted order so two batches cannot deadlock on
each other's groups; the read that follows the lock is a new statement, so under READ
COMMITTED it sees the previous holder's committed turn. The alternatives fall short:
``SELECT ... ORDER BY last_assigned_at FOR UPDATE`` waits on the row the other replica
took, then returns it in the order read before the wait (PostgreSQL re-checks a locked
row's WHERE, not the ORDER BY), so the same person came out twice; ``SKIP LOCKED`` keeps
people apart but, while another batch holds every member, finds nobody and has to leave
the task unassigned. The lock is held only by creates routed to that group, for the
writer's transaction (milliseconds). SQLite has one writer at a time already.

A member who is away (``users.away_until`` in the future) is passed over while another
member is not: their turn would only hand the task on to their delegate. When everyone is
away, turns go round them all as usual and delegation (``services/delegation.py``) takes it
from there.

Timestamps only order turns: each pick gets a stamp past every member's current one
(``max(now, newest) + n µs``), so a replica whose clock runs behind still queues the
person it picked at the back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._codes import ErrorCode
from awaithumans.server.db.models import UserMembershipRow, UserRow
from awaithumans.server.errors import ApiError
from awaithumans.server.services.memberships import KINDS, GroupKind
from awaithumans.server.services.policy import GROUP_NAME

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True, order=True)
class Group:
    """A role or a pool a task is routed to."""

    kind: GroupKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"

    def as_detail(self) -> dict[str, str]:
        return {self.kind: self.name}


def group_of(assign_to: dict[str, Any]) -> Group | None:
    """The group ``assign_to`` routes to, or None for the other shapes.

    Raises:
        ApiError: 400 ``INVALID_ASSIGNEE`` for a role or pool mixed with anything else, or
            a name that is not one.
    """
    named = [k for k in KINDS if k in assign_to]
    if not named:
        return None
    if len(assign_to) != 1:
        raise ApiError(
            400,
            ErrorCode.INVALID_ASSIGNEE,
            f"assign_to names a {named[0]} alone: {{{named[0]!r}: NAME}}, without "
            f"{', '.join(repr(k) for k in sorted(assign_to) if k != named[0])}.",
        )
    kind: GroupKind = named[0]
    name = assign_to[kind]
    if not isinstance(name, str) or not GROUP_NAME.fullmatch(name):
        raise ApiError(
            400,
            ErrorCode.INVALID_ASSIGNEE,
            f"assign_to.{kind}: {name!r} is not a {kind} name (lowercase letters, digits, "
            "'.', '_', '-', starting with a letter or digit; up to 64 characters).",
        )
    return Group(kind, name)


def _lock_key(group: Group) -> int:
    """A signed 64-bit advisory lock key for the group, stable across processes."""
    digest = hashlib.sha256(f"awaithumans.route:{group.kind}:{group.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def pick_members(
    conn: AsyncConnection, wanted: Sequence[Group], now: datetime
) -> list[str | None]:
    """One member for each entry of ``wanted`` (in order), None where the group has no
    active member; the members' turns are recorded in ``conn``'s transaction."""
    groups = sorted(set(wanted))
    if not groups:
        return []
    if conn.dialect.name == "postgresql":
        for group in groups:
            await conn.execute(select(func.pg_advisory_xact_lock(_lock_key(group))))
    members: dict[Group, list[str]] = {g: [] for g in groups}
    newest = now
    for group in groups:
        rows = (
            await conn.execute(
                select(UserRow.id, UserRow.last_assigned_at, UserRow.away_until)
                .join(UserMembershipRow, UserMembershipRow.user_id == UserRow.id)
                .where(
                    UserMembershipRow.kind == group.kind,
                    UserMembershipRow.name == group.name,
                    UserRow.is_active.is_(True),
                )
                .order_by(UserRow.last_assigned_at.asc().nulls_first(), UserRow.id)
            )
        ).all()
        here = [r.id for r in rows if r.away_until is None or r.away_until <= now]
        members[group] = here or [r.id for r in rows]
        newest = max([newest, *(r.last_assigned_at for r in rows if r.last_assigned_at)])
    turns = dict.fromkeys(groups, 0)
    stamp = newest
    stamps: dict[str, datetime] = {}
    picked: list[str | None] = []
    for group in wanted:
        queue = members[group]
        if not queue:
            picked.append(None)
            continue
        person = queue[turns[group] % len(queue)]
        turns[group] += 1
        stamp += _TICK
        stamps[person] = stamp
        picked.append(person)
    if stamps:
        await conn.execute(
            update(UserRow)
            .where(UserRow.id == bindparam("uid"))
            .values(last_assigned_at=bindparam("stamp", type_=UserRow.last_assigned_at.type)),
            [{"uid": uid, "stamp": at} for uid, at in stamps.items()],
        )
    return picked
