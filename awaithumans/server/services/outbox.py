"""The outbox dispatcher: delivers webhooks and notifications at least once.

Rows are written in the same transaction as the change they announce, so nothing is lost
between "committed" and "sent": a crash before delivery leaves a pending row that the next
process picks up. The dispatcher is woken right after commits that add rows, with a slow
safety-net scan for retries that come due and for rows left by a previous process.

A job is held on a short lease (``outbox_lease_seconds``) that the dispatcher renews while the
delivery runs, up to its policy's ``claim_seconds``: a process that dies mid-delivery
frees its jobs within seconds, yet a slow receiver is never delivered to twice at once. A
process that stops cleanly gives its unfinished jobs back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import datetime

from sqlalchemy import select

from awaithumans.core._routes import InvalidNotifyRouteError, NotifyRoute, parse_route
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import DeliveryReceiptRow, TaskRow
from awaithumans.server.db.records import OutboxRecord, TaskRecord
from awaithumans.server.principals import SYSTEM
from awaithumans.server.services.delivery import Job, Outcome, Receipt, RetryPolicy
from awaithumans.server.services.events import NOTIFY
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.outbox_rows import (
    ClaimDue,
    RecordOutcome,
    ReleaseLeases,
    RenewLeases,
)
from awaithumans.server.services.policy import policy_of
from awaithumans.server.services.task_actions import MarkNotified
from awaithumans.server.services.views import open_for
from awaithumans.server.services.votes import votes_by_task

log = logging.getLogger("awaithumans.server.outbox")

# Deliveries in flight at once; also the most rows one claim takes.
CONCURRENCY = 16


class OutboxDispatcher:
    """Claims due rows and delivers them, up to ``CONCURRENCY`` at a time.

    Deliveries run as their own tasks: the loop goes back to claiming as soon as it has
    started them, so one slow receiver (a LangGraph resumer replies only once the resumed
    graph has finished) never holds back the events queued behind it.
    """

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Each delivery running here: its row and the monotonic time its lease ends for good.
        self._inflight: dict[asyncio.Task[None], tuple[int, float]] = {}
        # The lease end this process last wrote for each of those rows (renewals compare it).
        self._leases: dict[int, datetime] = {}
        self._renewer: asyncio.Task[None] | None = None
        # True when the last claim took all the room there was, or left a due row waiting
        # for one in flight: the next delivery to finish wakes the loop.
        self._claim_again = False
        self.delivered = 0
        self._default_policy = RetryPolicy(max_attempts=ctx.settings.webhook_max_attempts)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="awaithumans-outbox")
        self._renewer = asyncio.create_task(self._renew(), name="awaithumans-outbox-leases")

    async def stop(self) -> None:
        unfinished = [row_id for row_id, _ in self._inflight.values()]
        tasks = [t for t in (self._task, self._renewer, *self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._renewer = None
        self._inflight.clear()
        self._leases.clear()
        if unfinished:
            # The next process (or another replica) takes them now, not a lease later.
            with contextlib.suppress(Exception):
                await self._ctx.writer.submit(ReleaseLeases(unfinished))

    async def _renew(self) -> None:
        """Keep the leases of the deliveries running here, each up to its policy's cap."""
        lease = self._ctx.settings.outbox_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            now = asyncio.get_running_loop().time()
            leases = {
                row_id: self._leases[row_id]
                for row_id, until in self._inflight.values()
                if until > now and row_id in self._leases
            }
            if not leases:
                continue
            try:
                renewed = await self._ctx.writer.submit(RenewLeases(leases, lease))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing the outbox's leases failed")
                continue
            for row_id in leases:
                if row_id in renewed:
                    self._leases[row_id] = renewed[row_id]
                elif self._leases.pop(row_id, None) is not None:
                    log.warning(
                        "outbox job %s: its lease lapsed and another process took it;"
                        " this delivery may repeat (same id)",
                        row_id,
                    )

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
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # lands just after the event was set, and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()

    async def _claim_and_start(self) -> None:
        room = CONCURRENCY - len(self._inflight)
        self._claim_again = room <= 0
        if self._claim_again:
            return
        claimed = await self._ctx.writer.submit(
            ClaimDue(room, self._ctx.settings.outbox_lease_seconds)
        )
        rows = claimed.rows
        # A full claim may have left due rows behind: take them as deliveries finish.
        self._claim_again = len(rows) == room or claimed.held_back
        if not rows:
            return
        jobs = await self._jobs(rows)
        started = asyncio.get_running_loop().time()
        for row in rows:
            job = jobs.get(row.id)
            task = asyncio.create_task(
                self._deliver(row, job), name=f"awaithumans-deliver-{row.id}"
            )
            cap = self._policy(self._handler_name(row, job)).claim_seconds
            self._inflight[task] = (row.id, started + cap)
            if row.claimed_until is not None:
                self._leases[row.id] = row.claimed_until
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        row_id, _ = self._inflight.pop(task, (None, 0.0))
        if row_id is not None:
            self._leases.pop(row_id, None)
        if self._claim_again:
            self._wake.set()

    async def _jobs(self, rows: list[OutboxRecord]) -> dict[int, Job | Outcome]:
        """Each row as its handler's job (task decrypted, route parsed, receipts attached),
        or the outcome it already has when there is nothing to deliver."""
        notify_tasks = {r.task_id for r in rows if r.kind == NOTIFY}
        async with self._ctx.engine.connect() as conn:
            tasks = {
                r["id"]: TaskRecord.from_row(r)
                for r in (
                    await conn.execute(
                        select(TaskRow).where(TaskRow.id.in_({r.task_id for r in rows}))
                    )
                ).mappings()
            }
            receipts: dict[tuple[str, str], list[Receipt]] = {}
            if notify_tasks:
                found = await conn.execute(
                    select(DeliveryReceiptRow)
                    .where(DeliveryReceiptRow.task_id.in_(notify_tasks))
                    .order_by(DeliveryReceiptRow.id)
                )
                for r in found.mappings():
                    receipts.setdefault((r["task_id"], r["route"]), []).append(
                        Receipt(channel=r["channel"], ref=r["ref"], outbox_id=r["outbox_id"])
                    )
            # A task decided by several approvers: its messages and events carry the votes.
            voting = [t.id for t in tasks.values() if policy_of(t).counts_votes]
            approvals = await votes_by_task(conn, self._ctx.sealer, voting)
        jobs: dict[int, Job | Outcome] = {}
        for row in rows:
            task = tasks.get(row.task_id)
            if task is None:
                jobs[row.id] = Outcome.skip("the task no longer exists")
                continue
            route: NotifyRoute | None = None
            if row.kind == NOTIFY:
                try:
                    route = parse_route(row.target)
                except InvalidNotifyRouteError as exc:
                    # Routes are checked at create; one stored by an older version may not be.
                    jobs[row.id] = Outcome.fail(str(exc), retry=False)
                    continue
            job = self._job(row, task, route, receipts.get((row.task_id, row.target)))
            voted = approvals.get(row.task_id)
            jobs[row.id] = dataclasses.replace(job, approvals=tuple(voted)) if voted else job
        return jobs

    def _job(
        self,
        row: OutboxRecord,
        task: TaskRecord,
        route: NotifyRoute | None,
        receipts: list[Receipt] | None,
    ) -> Job:
        sealer = self._ctx.sealer
        return Job(
            id=row.id,
            event_id=row.event_id,
            task_id=row.task_id,
            kind=row.kind,
            target=row.target,
            event=row.event,
            attempt=row.attempts + 1,
            task=task,
            response=open_for(sealer, task.id, task.response_enc),
            payload=None if task.redact_payload else open_for(sealer, task.id, task.payload_enc),
            route=route,
            receipts=tuple(receipts or ()),
            body=row.body,
        )

    async def _deliver(self, row: OutboxRecord, job: Job | Outcome | None) -> None:
        try:
            await self._deliver_once(row, job)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The row stays claimed and is retried once its claim runs out.
            log.exception("delivering %s job %s failed", row.kind, row.event_id)

    @staticmethod
    def _handler_name(row: OutboxRecord, job: Job | Outcome | None) -> str:
        if isinstance(job, Job):
            return job.route.channel if job.route is not None else job.kind
        return row.kind

    def _policy(self, name: str) -> RetryPolicy:
        return self._ctx.handlers.policy(name) or self._default_policy

    async def _deliver_once(self, row: OutboxRecord, job: Job | Outcome | None) -> None:
        name = self._handler_name(row, job)
        if isinstance(job, Job):
            outcome = await self._attempt(name, job)
        else:
            outcome = job or Outcome.skip("nothing to deliver")
        writer = self._ctx.writer
        policy = self._policy(name)
        await writer.submit(RecordOutcome(row, outcome, policy, channel=name))
        self._ctx.metrics.delivery(
            row.kind,
            name,
            delivered=outcome.delivered,
            skipped=outcome.skipped,
            # As RecordOutcome decides it: no retry asked for, or the last attempt spent.
            final=not outcome.retry
            or (policy.max_attempts is not None and row.attempts + 1 >= policy.max_attempts),
        )
        if outcome.delivered:
            self.delivered += 1
        if outcome.skipped:
            log.info("%s job %s for %s skipped: %s", row.kind, row.event_id, row.task_id,
                     outcome.error)  # fmt: skip
        elif outcome.error and not outcome.delivered:
            log.warning("%s job %s for %s -> %s: %s", row.kind, row.event_id, row.task_id,
                        row.target, outcome.error)  # fmt: skip
        if row.kind == NOTIFY and outcome.reached_human:
            await writer.submit(
                MarkNotified(self._ctx, row.task_id, SYSTEM, Channel.SYSTEM, row.target)
            )

    async def _attempt(self, name: str, job: Job) -> Outcome:
        handler = self._ctx.handlers.get(name)
        if handler is None:
            return Outcome.skip(f"channel {name!r} is not configured on this server")
        try:
            return await handler.deliver(job)
        except Exception as exc:
            log.exception("channel %s raised", name)
            return Outcome.fail(f"{type(exc).__name__}: {exc}")
