"""A deadline that moves forward while the timeout scheduler is mid-pass is not lost.

The pass reads the open deadlines, then works; a task committed meanwhile with an earlier
deadline kicks the scheduler. That kick must count after the pass, or the task waits for
``scheduler_max_sleep_seconds`` (here a minute) instead of timing out at once. The pass is
held open at the exact interleaving (its read done, the kick landing) with an event.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import update

from awaithumans.server.db.models import TaskRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.services.scheduler import TimeoutScheduler
from tests._app_fixtures import make_settings, running_app
from tests._waiting import until


class HeldPass(TimeoutScheduler):
    """The real scheduler, its first pass held open after it read the deadlines."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.read = asyncio.Event()
        self.release = asyncio.Event()

    async def _timeouts(self) -> datetime | None:
        found = await super()._timeouts()
        if not self.release.is_set():
            self.read.set()
            await self.release.wait()
        return found


async def test_a_kick_during_a_pass_is_not_lost(database_url: str) -> None:
    settings = make_settings(database_url, scheduler_max_sleep_seconds=60)
    async with running_app(settings) as (app, admin):
        made = await admin.post(
            "/api/tasks",
            json={
                "task": "Held pass",
                "payload": {},
                "payload_schema": {"type": "object"},
                "response_schema": {"type": "object"},
                "timeout_seconds": 3600,
                "idempotency_key": "held-pass",
            },
        )
        assert made.status_code == 201, made.text
        task_id = made.json()["id"]
        ctx = app.state.ctx
        scheduler = HeldPass(ctx)
        scheduler.start()
        try:
            await asyncio.wait_for(scheduler.read.wait(), 10)
            # While the pass works on what it read (the deadline an hour away), the
            # deadline moves to now and the scheduler is kicked, as a create would.
            now = utcnow()
            async with ctx.engine.begin() as conn:
                await conn.execute(
                    update(TaskRow).where(TaskRow.id == task_id).values(timeout_at=now)
                )
            scheduler.kick(now)
            scheduler.release.set()

            async def timed_out() -> bool:
                got = await admin.get(f"/api/tasks/{task_id}")
                return bool(got.json()["status"] == "timed_out")

            await until(timed_out, timeout=10, why=lambda: "the held scheduler lost the kick")
            assert scheduler.fired == 1
        finally:
            await scheduler.stop()
