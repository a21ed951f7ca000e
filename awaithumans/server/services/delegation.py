"""Delegation: "away until <when>, send my new tasks to <someone>" (migration 0014 columns
``users.away_until`` and ``users.delegate_to_user_id``).

A delegation is in effect while ``away_until`` is in the future; after that the person gets
their tasks again with nothing to undo. Setting one is checked here (:func:`delegation_problem`,
inside the write that stores it); task creation follows them (:func:`follow_delegations`),
a few hops at most and never round a cycle.

Two replicas saving opposite delegations at once (A -> B and B -> A) must not both pass the
cycle check, each reading the other's row before it was written: on PostgreSQL the check
takes a transaction-level advisory lock (:data:`LOCK_KEY`, one for all delegation changes,
which are rare) held until the saving write commits, and the reads after it see what the
other committed; SQLite has one writer, so there the writes already take turns. Should a
cycle be in the table anyway (written by hand), tasks go to the first person met twice
instead of looping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.server.db.models import UserRow

#: How far a chain is followed (alice -> bob -> carol ...): far enough for a team where the
#: stand-in is away too, short enough that a long chain is someone's mistake, not a plan.
MAX_HOPS = 5

#: The advisory lock key delegation changes take on PostgreSQL (signed 64-bit, the same in
#: every process).
LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"awaithumans.delegation").digest()[:8], "big", signed=True
)


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a delegation: ``source`` is away until ``until``, ``target`` stands in.
    The labels are what the audit trail shows of each (email, else display name)."""

    source: str
    target: str
    until: datetime
    source_label: str
    target_label: str

    def detail(self) -> dict[str, Any]:
        """The "delegated" audit row's detail."""
        return {
            "from": self.source,
            "to": self.target,
            "until": self.until.isoformat(),
            "message": f"{self.source_label} is away until "
            f"{self.until:%Y-%m-%d %H:%M} UTC: delegated to {self.target_label}.",
        }


@dataclass(frozen=True, slots=True)
class Delegated:
    """A task meant for ``original`` goes to ``delegate``, by these steps."""

    original: str
    delegate: str
    hops: tuple[Hop, ...]


async def delegation_problem(
    conn: AsyncConnection, user_id: str, delegate_id: str, away_until: datetime, now: datetime
) -> str | None:
    """Why ``user_id`` may not delegate to ``delegate_id`` until ``away_until``; None if fine.

    Call it in the transaction that saves the delegation: on PostgreSQL it takes the
    delegation lock, so no other delegation is checked until that transaction ends.
    """
    if away_until <= now:
        return "away_until is in the past: a delegation needs a date to come back in the future."
    if delegate_id == user_id:
        return "A person cannot delegate to themselves."
    if conn.dialect.name == "postgresql":
        # Taken before the first read: each statement after it sees what the previous
        # holder committed (READ COMMITTED), so its chain is walked as it now stands.
        await conn.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
    delegate = (
        await conn.execute(select(UserRow.is_active).where(UserRow.id == delegate_id))
    ).first()
    if delegate is None:
        return f"No user {delegate_id!r} to delegate to."
    if not delegate.is_active:
        return "That delegate is deactivated; choose an active user."
    # Walk the delegate's own chain as it stands now: reaching ``user_id`` closes a loop.
    seen = {delegate_id}
    current = delegate_id
    while True:
        nxt = (
            await conn.execute(
                select(UserRow.delegate_to_user_id).where(
                    UserRow.id == current, UserRow.away_until > now
                )
            )
        ).scalar()
        if nxt is None or nxt in seen:
            return None
        if nxt == user_id:
            return (
                "That would make a delegation cycle: the delegate's tasks already come "
                "back to this person."
            )
        seen.add(nxt)
        current = nxt


async def follow_delegations(
    conn: AsyncConnection, user_ids: Iterable[str], now: datetime
) -> dict[str, Delegated]:
    """For each of ``user_ids`` who is away now, where their new tasks go instead.

    A chain goes on while the next person is active and away too, up to :data:`MAX_HOPS`,
    and stops before anyone met already. A delegate who was deactivated meanwhile is
    skipped: the task stays with the last active person of the chain.
    """
    found: dict[str, Delegated] = {}
    away = await _away(conn, set(user_ids), now)
    # Later hops are looked up as they are met (rare: the stand-in is away as well).
    for start in sorted(away):
        hops: list[Hop] = []
        seen = {start}
        current = start
        while current in away and len(hops) < MAX_HOPS:
            hop, delegate_active = away[current]
            if hop.target in seen or not delegate_active:
                break
            hops.append(hop)
            seen.add(hop.target)
            current = hop.target
            if current not in away:
                away.update(await _away(conn, {current}, now))
        if hops:
            found[start] = Delegated(start, current, tuple(hops))
    return found


async def _away(
    conn: AsyncConnection, user_ids: set[str], now: datetime
) -> dict[str, tuple[Hop, bool]]:
    """Who among ``user_ids`` is away now: the step to their delegate, and whether that
    delegate is active."""
    if not user_ids:
        return {}
    delegate = UserRow.__table__.alias("delegate")
    rows = (
        await conn.execute(
            select(
                UserRow.id,
                UserRow.email,
                UserRow.display_name,
                UserRow.delegate_to_user_id,
                UserRow.away_until,
                delegate.c.email.label("delegate_email"),
                delegate.c.display_name.label("delegate_name"),
                delegate.c.is_active.label("delegate_active"),
            )
            .join(delegate, delegate.c.id == UserRow.delegate_to_user_id)
            .where(
                UserRow.id.in_(sorted(user_ids)),
                UserRow.away_until > now,
                UserRow.delegate_to_user_id.is_not(None),
            )
        )
    ).all()
    return {
        r.id: (
            Hop(
                r.id,
                r.delegate_to_user_id,
                r.away_until,
                r.email or r.display_name,
                r.delegate_email or r.delegate_name,
            ),
            bool(r.delegate_active),
        )
        for r in rows
    }
