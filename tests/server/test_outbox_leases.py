"""The outbox's leases: renewed while a delivery runs, compared before they are renewed.

With a 1 s lease, a receiver that holds a webhook for three leases still gets it once: the
dispatcher renews its lease every third of a second, so its own next scan never takes the
job again. A renewal is a compare-and-set on the lease end this process last wrote: a
process that stalled past its lease cannot extend the lease another process has since taken.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

from awaithumans.server.db.models import OutboxRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.services.outbox_rows import RenewLeases
from awaithumans.testing import WebhookReceiver
from tests._app_fixtures import make_settings, running_app
from tests._waiting import until


async def test_a_slow_delivery_keeps_its_lease_and_goes_out_once(tmp_path: Path) -> None:
    hold = threading.Event()
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'leases.db'}",
        outbox_lease_seconds=1.0,
        outbox_poll_seconds=0.1,
    )
    with WebhookReceiver(hold=hold) as hooks:
        async with running_app(settings) as (app, api):
            made = await api.post(
                "/api/tasks",
                json={
                    "task": "Slow receiver?",
                    "payload": {},
                    "payload_schema": {"type": "object"},
                    "response_schema": {"type": "object"},
                    "timeout_seconds": 600,
                    "idempotency_key": "lease-1",
                    "callback_url": hooks.url,
                },
            )
            assert made.status_code == 201, made.text
            task_id = made.json()["id"]
            done = await api.post(f"/api/tasks/{task_id}/complete", json={"response": {}})
            assert done.status_code == 200, done.text
            await asyncio.to_thread(hooks.wait_for, 1, 10)
            # Held for three leases: without renewals the dispatcher's own scans (every
            # 0.1 s) would take the job again after the first second.
            held_until = time.monotonic() + 3.0
            engine = app.state.ctx.engine
            while time.monotonic() < held_until:
                async with engine.connect() as conn:
                    row = (
                        await conn.execute(select(OutboxRow).where(OutboxRow.task_id == task_id))
                    ).one()
                assert row.status == "pending"
                assert row.claimed_until is not None
                assert row.claimed_until > utcnow()
                await asyncio.sleep(0.25)
            assert len(hooks.deliveries) == 1
            hold.set()

            async def delivered() -> bool:
                async with engine.connect() as conn:
                    status: str = (
                        await conn.execute(
                            select(OutboxRow.status).where(OutboxRow.task_id == task_id)
                        )
                    ).scalar_one()
                return status == "delivered"

            await until(delivered, 10)
    assert len(hooks.deliveries) == 1


async def test_a_renewal_only_extends_the_lease_it_wrote(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'cas.db'}")
    async with running_app(settings) as (app, api):
        ctx = app.state.ctx
        made = await api.post(
            "/api/tasks",
            json={
                "task": "Lease?",
                "payload": {},
                "payload_schema": {"type": "object"},
                "response_schema": {"type": "object"},
                "timeout_seconds": 600,
                "idempotency_key": "lease-2",
            },
        )
        assert made.status_code == 201, made.text
        # A job some process holds (its lease runs 30 s: no scan here takes it meanwhile).
        ours = utcnow() + timedelta(seconds=30)
        async with ctx.engine.begin() as conn:
            row_id = (
                await conn.execute(
                    insert(OutboxRow)
                    .values(
                        event_id="msg_lease",
                        task_id=made.json()["id"],
                        kind="webhook",
                        target="http://127.0.0.1:9/hook",
                        body={"event": "task.completed"},
                        status="pending",
                        attempts=0,
                        next_attempt_at=utcnow(),
                        claimed_until=ours,
                        created_at=utcnow(),
                    )
                    .returning(OutboxRow.id)
                )
            ).scalar_one()
            stored = (
                await conn.execute(select(OutboxRow.claimed_until).where(OutboxRow.id == row_id))
            ).scalar_one()
        # Another process's lease (an end this one never wrote) is left alone.
        stale = stored - timedelta(seconds=30)
        assert await ctx.writer.submit(RenewLeases({row_id: stale}, 10)) == {}
        async with ctx.engine.connect() as conn:
            unchanged = (
                await conn.execute(select(OutboxRow.claimed_until).where(OutboxRow.id == row_id))
            ).scalar_one()
        assert unchanged == stored
        # Its own is renewed, and the new end is what the next renewal compares.
        renewed = await ctx.writer.submit(RenewLeases({row_id: stored}, 60))
        assert set(renewed) == {row_id}
        assert renewed[row_id] > stored
        again = await ctx.writer.submit(RenewLeases({row_id: renewed[row_id]}, 90))
        assert again[row_id] > renewed[row_id]
