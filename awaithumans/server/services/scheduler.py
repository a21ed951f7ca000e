"""The timeout scheduler: closes tasks whose deadline passed, within a second of it, and
takes their due reminders and escalations (``services/nudges.py``).

The database is the schedule: on every pass the scheduler asks for the earliest open
deadline, times out what is due, takes the nudges that are due, then sleeps until the next
deadline or nudge (or until a new task with an earlier one wakes it). Nothing lives only in
memory, so a restart loses nothing: the first pass after start catches up on whatever fell
due while the server was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import select, text

from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import OPEN_TASK_CONDITION, TaskRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import SCHEDULER
from awaithumans.server.services.lifecycle import Channel, Moved
from awaithumans.server.services.nudges import take_due
from awaithumans.server.services.task_actions import TimeOut

log = logging.getLogger("awaithumans.server.scheduler")

_BATCH = 200


class TimeoutScheduler:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._wake = asyncio.Event()
        self._next: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self.fired = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="awaithumans-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def kick(self, deadline: datetime) -> None:
        """A task with ``deadline`` (a timeout or a first nudge) was created; wake up if it
        is due before the next one."""
        if self._next is None or deadline < self._next:
            self._next = deadline
            self._wake.set()

    async def _run(self) -> None:
        max_sleep = self._ctx.settings.scheduler_max_sleep_seconds
        while True:
            # A pass may read the deadlines before a kick's commit, so during it every kick
            # is kept (the earliest here) and counts after it; clearing the wake-up after the
            # pass alone would lose such a kick until max_sleep.
            self._next = None
            try:
                next_due = await self._pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timeout scheduler pass failed; retrying shortly")
                next_due = None
                await asyncio.sleep(1.0)
            kicked = self._kicked_during_pass()
            if kicked is not None and (next_due is None or kicked < next_due):
                next_due = kicked
            self._next = next_due
            delay = max_sleep
            if next_due is not None:
                delay = min(max_sleep, max(0.0, (next_due - utcnow()).total_seconds()))
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 a cancel that lands just after
            # the event was set is swallowed by wait_for, and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _kicked_during_pass(self) -> datetime | None:
        """The earliest deadline ``kick`` was given since the pass began, if any.

        A method rather than reading ``self._next`` inline: ``_run`` set it to None before
        the pass, and a type checker would keep that narrowing across the ``await``.
        """
        return self._next

    async def _pass(self) -> datetime | None:
        """Time out every due task, then take the due nudges; return when the next of
        either falls due, if anything does."""
        next_deadline = await self._timeouts()
        try:
            next_nudge = await take_due(self._ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Timeouts must not wait on a nudge that fails: log it, try it again shortly.
            log.exception("reminder/escalation pass failed; retrying shortly")
            next_nudge = utcnow() + timedelta(seconds=1)
        found = [d for d in (next_deadline, next_nudge) if d is not None]
        return min(found) if found else None

    async def _timeouts(self) -> datetime | None:
        """Time out every due task; return the next open deadline, if any."""
        while True:
            now = utcnow()
            async with self._ctx.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(
                            TaskRow.id,
                            TaskRow.timeout_at,
                            # Set at create and never changed, so it is still true when the
                            # timeout lands: the audit row says the default was applied.
                            TaskRow.on_timeout_enc.is_not(None).label("has_default"),
                        )
                        .where(text(OPEN_TASK_CONDITION))
                        .order_by(TaskRow.timeout_at)
                        .limit(_BATCH)
                    )
                ).all()
            due = [r for r in rows if r.timeout_at <= now]
            if not due:
                return rows[0].timeout_at if rows else None
            results = await asyncio.gather(
                *(
                    self._ctx.writer.submit(
                        TimeOut(
                            self._ctx,
                            r.id,
                            SCHEDULER,
                            Channel.SCHEDULER,
                            default_applied=bool(r.has_default),
                        )
                    )
                    for r in due
                )
            )
            moved = sum(1 for r in results if isinstance(r, Moved))
            self.fired += moved
            if moved == 0:
                # Everything due was closed by someone else meanwhile; look again later
                # rather than spin.
                return now + timedelta(seconds=1)
