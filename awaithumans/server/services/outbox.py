"""The outbox dispatcher: delivers webhooks and notifications at least once.

Rows are written in the same transaction as the change they announce, so nothing is lost
between "committed" and "sent": a crash before delivery leaves a pending row that the next
process picks up. The dispatcher is woken right after commits that add rows, with a slow
safety-net scan for retries that come due and for rows left by a previous process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.server.channels.base import Job, Outcome
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import OutboxRow, TaskRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import SYSTEM
from awaithumans.server.services.events import NOTIFY
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.task_actions import MarkNotified
from awaithumans.server.services.views import open_for
from awaithumans.server.services.writer import Write

# Jitter from a private generator: the global one is the application's (seeded runs,
# Hypothesis) and a library should not move it.
_jitter = random.Random()

log = logging.getLogger("awaithumans.server.outbox")

# Deliveries in flight at once; also the most rows one claim takes.
_CONCURRENCY = 16
# A claimed job whose process died becomes due again after this long.
_CLAIM_SECONDS = 120
_MAX_BACKOFF_SECONDS = 3600.0


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: ~2 s, 4 s, 8 s ... capped at an hour."""
    base = min(_MAX_BACKOFF_SECONDS, 2.0**attempts)
    return base * _jitter.uniform(0.5, 1.0)


class ClaimDue(Write[list[dict[str, Any]]]):
    """Take up to ``limit`` due rows for this process (others skip them while claimed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def apply(self, conn: AsyncConnection) -> list[dict[str, Any]]:
        now = utcnow()
        due = and_(
            OutboxRow.status == "pending",
            OutboxRow.next_attempt_at <= now,
            or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now),
        )
        ids = list(
            (
                await conn.execute(
                    select(OutboxRow.id).where(due).order_by(OutboxRow.id).limit(self.limit)
                )
            ).scalars()
        )
        if not ids:
            return []
        claimed = await conn.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(ids), due)
            .values(claimed_until=now + timedelta(seconds=_CLAIM_SECONDS))
            .returning(*OutboxRow.__table__.columns)
        )
        return [dict(r) for r in claimed.mappings()]


class RecordOutcome(Write[None]):
    def __init__(self, row: dict[str, Any], outcome: Outcome, max_attempts: int) -> None:
        self.row = row
        self.outcome = outcome
        self.max_attempts = max_attempts

    async def apply(self, conn: AsyncConnection) -> None:
        attempts = self.row["attempts"] + 1
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
        elif not out.retry or attempts >= self.max_attempts:
            values.update(status="failed")
        else:
            values.update(next_attempt_at=utcnow() + timedelta(seconds=retry_delay(attempts)))
        await conn.execute(update(OutboxRow).where(OutboxRow.id == self.row["id"]).values(values))


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


class OutboxDispatcher:
    """Claims due rows and delivers them, up to ``_CONCURRENCY`` at a time.

    Deliveries run as their own tasks: the loop goes back to claiming as soon as it has
    started them, so one slow receiver (a LangGraph resumer replies only once the resumed
    graph has finished) never holds back the events queued behind it.
    """

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        # True when the last claim took all the room there was: the next delivery to
        # finish wakes the loop, as due rows may be waiting.
        self._saturated = False
        self.delivered = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="awaithumans-outbox")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        # A cancelled delivery's row stays claimed; it is due again after _CLAIM_SECONDS.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._inflight.clear()

    def kick(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        interval = self._ctx.settings.outbox_poll_seconds
        while True:
            self._wake.clear()
            try:
                await self._claim_and_start()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def _claim_and_start(self) -> None:
        room = _CONCURRENCY - len(self._inflight)
        self._saturated = room <= 0
        if self._saturated:
            return
        rows = await self._ctx.writer.submit(ClaimDue(room))
        # A full claim may have left due rows behind: take them as deliveries finish.
        self._saturated = len(rows) == room
        if not rows:
            return
        tasks = await self._load_tasks({r["task_id"] for r in rows})
        for row in rows:
            task = asyncio.create_task(
                self._deliver(row, tasks.get(row["task_id"])),
                name=f"awaithumans-deliver-{row['id']}",
            )
            self._inflight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if self._saturated:
            self._wake.set()

    async def _load_tasks(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        async with self._ctx.engine.connect() as conn:
            found = (await conn.execute(select(TaskRow).where(TaskRow.id.in_(ids)))).mappings()
            return {r["id"]: dict(r) for r in found}

    async def _deliver(self, row: dict[str, Any], task: dict[str, Any] | None) -> None:
        try:
            await self._deliver_once(row, task)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The row stays claimed and is retried once its claim runs out.
            log.exception("delivering %s job %s failed", row["kind"], row["event_id"])

    async def _deliver_once(self, row: dict[str, Any], task: dict[str, Any] | None) -> None:
        outcome = await self._attempt(row, task)
        await self._ctx.writer.submit(
            RecordOutcome(row, outcome, self._ctx.settings.webhook_max_attempts)
        )
        if outcome.delivered:
            self.delivered += 1
        if outcome.skipped:
            log.info(
                "%s job %s for %s skipped: %s",
                row["kind"],
                row["event_id"],
                row["task_id"],
                outcome.error,
            )
        elif outcome.error and not outcome.delivered:
            log.warning(
                "%s job %s for %s -> %s: %s",
                row["kind"],
                row["event_id"],
                row["task_id"],
                row["target"],
                outcome.error,
            )
        if row["kind"] == NOTIFY and outcome.reached_human:
            await self._ctx.writer.submit(
                MarkNotified(self._ctx, row["task_id"], SYSTEM, Channel.SYSTEM, row["target"])
            )

    async def _attempt(self, row: dict[str, Any], task: dict[str, Any] | None) -> Outcome:
        if task is None:
            return Outcome.skip("the task no longer exists")
        name = row["kind"] if row["kind"] != NOTIFY else row["target"].split(":", 1)[0]
        name = name.split("+", 1)[0]
        handler = self._ctx.channels.get(name)
        if handler is None:
            return Outcome.skip(f"channel {name!r} is not configured on this server")
        sealer = self._ctx.sealer
        job = Job(
            id=row["id"],
            event_id=row["event_id"],
            task_id=row["task_id"],
            kind=row["kind"],
            target=row["target"],
            event=str(row["body"].get("event", "")),
            attempt=row["attempts"] + 1,
            task=task,
            response=open_for(sealer, task["id"], task["response_enc"]),
            payload=None
            if task["redact_payload"]
            else open_for(sealer, task["id"], task["payload_enc"]),
        )
        try:
            return await handler.deliver(job)
        except Exception as exc:
            log.exception("channel %s raised", name)
            return Outcome.fail(f"{type(exc).__name__}: {exc}")


async def list_jobs(
    conn: AsyncConnection, *, status: str | None, task_id: str | None, limit: int
) -> Sequence[Any]:
    query = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxRow.status == status)
    if task_id:
        query = query.where(OutboxRow.task_id == task_id)
    return (await conn.execute(query)).mappings().all()
