"""The outbox's own writes: claiming due rows, recording what a delivery came to.

Claiming keeps one order per notification route: a task's closing notice on a route (its
``task.completed`` to ``slack:#approvals``) is claimed only once the route's earlier notice
(``task.created``) was delivered or given up, so the channel can update the message it
sent, using the delivery receipt that delivery recorded. If the earlier notice never went
out (still waiting for its first try or a retry) when the task ends, the closing notice
replaces it: there is nothing left to ask anyone.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.server.db.models import DeliveryReceiptRow, OutboxRow
from awaithumans.server.db.records import OutboxRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.services.delivery import Outcome, RetryPolicy
from awaithumans.server.services.events import CREATED_EVENT, NOTIFY
from awaithumans.server.services.writer import Write

# Jitter from a private generator: the global one is the application's (seeded runs,
# Hypothesis) and a library should not move it.
_jitter = random.Random()

# A claim is a lease: the process delivering a job renews it every third of this while the
# job runs (services/outbox.py), so a job whose process died (a crash, a kill -9, a lost
# machine) is due again this soon, while a slow delivery is never taken twice. The server
# uses AWAITHUMANS_OUTBOX_LEASE_SECONDS, whose default this is.
LEASE_SECONDS = 15.0
_MAX_BACKOFF_SECONDS = 3600.0


def retry_delay(attempts: int, cap: float = _MAX_BACKOFF_SECONDS) -> float:
    """Exponential backoff with jitter: ~2 s, 4 s, 8 s ... capped at ``cap`` (an hour)."""
    base = min(cap, 2.0 ** min(attempts, 32))
    return base * _jitter.uniform(0.5, 1.0)


@dataclass(frozen=True, slots=True)
class Claimed:
    """Rows taken for delivery; ``held_back``: due rows left waiting for an earlier one."""

    rows: list[OutboxRecord]
    held_back: bool = False


def _due(now: datetime) -> Any:
    return and_(
        OutboxRow.status == "pending",
        OutboxRow.next_attempt_at <= now,
        or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now),
    )


class ClaimDue(Write[Claimed]):
    """Take up to ``limit`` due rows for this process (others skip them while claimed),
    each on a lease of ``lease_seconds`` that the process renews while it works."""

    def __init__(self, limit: int, lease_seconds: float = LEASE_SECONDS) -> None:
        self.limit = limit
        self.lease_seconds = lease_seconds

    async def apply(self, conn: AsyncConnection) -> Claimed:
        now = utcnow()
        candidates = [
            OutboxRecord.from_row(r)
            for r in (
                await conn.execute(
                    select(OutboxRow).where(_due(now)).order_by(OutboxRow.id).limit(self.limit)
                )
            ).mappings()
        ]
        if not candidates:
            return Claimed([])
        held, superseded = await _route_order(conn, candidates)
        ids = [r.id for r in candidates if r.id not in held and r.id not in superseded]
        if superseded:
            await conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(list(superseded)), OutboxRow.status == "pending")
                .values(status="skipped", claimed_until=None, last_error=_SUPERSEDED)
            )
        if not ids:
            return Claimed([], held_back=bool(held))
        claimed = await conn.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(ids), _due(now))
            .values(claimed_until=now + timedelta(seconds=self.lease_seconds))
            .returning(*OutboxRow.__table__.columns)
        )
        rows = sorted((OutboxRecord.from_row(r) for r in claimed.mappings()), key=lambda r: r.id)
        return Claimed(rows, held_back=bool(held))


class RenewLeases(Write[dict[int, datetime]]):
    """Extend this process's leases on the jobs it is still delivering.

    ``leases`` maps each job to the lease end this process last wrote: a lease is renewed
    only while it is still that one (a compare-and-set), so a process that stalled past its
    lease, whose job another process has taken since, cannot extend the newcomer's lease.
    Returns the new lease end of each job renewed; a job missing from it is no longer ours.
    """

    def __init__(
        self, leases: Mapping[int, datetime], lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.leases = dict(leases)
        self.lease_seconds = lease_seconds

    async def apply(self, conn: AsyncConnection) -> dict[int, datetime]:
        until = utcnow() + timedelta(seconds=self.lease_seconds)
        by_end: dict[datetime, list[int]] = {}
        for row_id, end in self.leases.items():
            by_end.setdefault(end, []).append(row_id)
        renewed: dict[int, datetime] = {}
        for end, ids in by_end.items():
            result = await conn.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(ids),
                    OutboxRow.status == "pending",
                    OutboxRow.claimed_until == end,
                )
                .values(claimed_until=until)
                .returning(OutboxRow.id, OutboxRow.claimed_until)
            )
            renewed.update({row.id: row.claimed_until for row in result})
        return renewed


class ReleaseLeases(Write[None]):
    """Give back jobs this process will not finish (it is stopping): due again at once.

    The lease is ended, not erased: a job that was taken may have gone out already, and
    :func:`_route_order` must not treat it as never sent.
    """

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)

    async def apply(self, conn: AsyncConnection) -> None:
        await conn.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(self.ids), OutboxRow.status == "pending")
            .values(claimed_until=utcnow())
        )


_SUPERSEDED = "superseded: the task ended before this notification went out"


async def _route_order(
    conn: AsyncConnection, candidates: Sequence[OutboxRecord]
) -> tuple[set[int], set[int]]:
    """Which candidates must wait for an earlier notice on their route, and which earlier
    notices (candidates or not) a later one replaces."""
    closing = [r for r in candidates if r.kind == NOTIFY and r.event != CREATED_EVENT]
    if not closing:
        return set(), set()
    earlier = [
        OutboxRecord.from_row(r)
        for r in (
            await conn.execute(
                select(OutboxRow).where(
                    OutboxRow.kind == NOTIFY,
                    OutboxRow.status == "pending",
                    OutboxRow.task_id.in_({r.task_id for r in closing}),
                    OutboxRow.id < max(r.id for r in closing),
                )
            )
        ).mappings()
    ]
    held: set[int] = set()
    superseded: set[int] = set()
    for late in closing:
        before = [
            e
            for e in earlier
            if e.task_id == late.task_id and e.target == late.target and e.id < late.id
        ]
        # A pending notice with a lease (live, or left by a process that died or stopped
        # mid-delivery) may have reached the person: it goes (again, under the same id), and
        # the closing notice after it, so whoever was asked hears how it ended. Only notices
        # never taken are replaced by the closing one.
        if any(e.claimed_until is not None for e in before):
            held.add(late.id)
        else:
            superseded.update(e.id for e in before)
    return held, superseded


class RecordOutcome(Write[None]):
    """Book one delivery attempt; a delivered notification's receipt is stored with it."""

    def __init__(
        self,
        row: OutboxRecord,
        outcome: Outcome,
        policy: RetryPolicy,
        *,
        channel: str | None = None,
    ) -> None:
        self.row = row
        self.outcome = outcome
        self.policy = policy
        self.channel = channel

    async def apply(self, conn: AsyncConnection) -> None:
        attempts = self.row.attempts + 1
        out = self.outcome
        values: dict[str, Any] = {
            "attempts": attempts,
            "claimed_until": None,
            "last_error": out.error,
            "last_status_code": out.status_code,
        }
        if out.delivered:
            values.update(status="delivered", delivered_at=utcnow(), last_error=None)
        elif out.skipped:
            values.update(status="skipped")
        elif not out.retry or (
            self.policy.max_attempts is not None and attempts >= self.policy.max_attempts
        ):
            values.update(status="failed")
        else:
            delay = retry_delay(attempts, self.policy.max_backoff_seconds)
            if out.retry_after is not None:
                # The receiver said when: not before that (a 429's Retry-After).
                delay = max(delay, out.retry_after)
            values.update(next_attempt_at=utcnow() + timedelta(seconds=delay))
        await conn.execute(update(OutboxRow).where(OutboxRow.id == self.row.id).values(values))
        if out.delivered and out.receipt is not None and self.row.kind == NOTIFY:
            await conn.execute(
                insert(DeliveryReceiptRow).values(
                    task_id=self.row.task_id,
                    outbox_id=self.row.id,
                    route=self.row.target,
                    channel=self.channel or self.row.target.split(":", 1)[0],
                    ref=dict(out.receipt),
                    locator=out.locator,
                    created_at=utcnow(),
                )
            )


class Redeliver(Write[bool]):
    """An operator asks for a job to be sent again, whatever its state."""

    def __init__(self, outbox_id: int) -> None:
        self.outbox_id = outbox_id

    async def apply(self, conn: AsyncConnection) -> bool:
        result = await conn.execute(
            update(OutboxRow)
            .where(OutboxRow.id == self.outbox_id)
            .values(status="pending", next_attempt_at=utcnow(), claimed_until=None)
        )
        return result.rowcount == 1


async def list_jobs(
    conn: AsyncConnection, *, status: str | None, task_id: str | None, limit: int
) -> list[OutboxRecord]:
    query = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxRow.status == status)
    if task_id:
        query = query.where(OutboxRow.task_id == task_id)
    return [OutboxRecord.from_row(r) for r in (await conn.execute(query)).mappings()]
