"""Delivery receipts, the order of a route's notices, and a channel's inbound routes.

The channels here are small test channels plugged in through ``create_app(channels=...)``,
the way Slack and email plug in: they receive the real outbox's jobs from a real database
and answer through the real answer path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from awaithumans.core._routes import NotifyRoute
from awaithumans.server.api.deps import Ctx, Human
from awaithumans.server.app import create_app
from awaithumans.server.services import answers
from awaithumans.server.services.delivery import Job, Outcome, Receipt
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.outbox_rows import ClaimDue
from tests._app_fixtures import ADMIN_TOKEN, make_settings

TASK = {
    "task": "Approve?",
    "payload": {},
    "payload_schema": {"type": "object"},
    "response_schema": {
        "type": "object",
        "properties": {"approved": {"type": "boolean"}},
        "required": ["approved"],
    },
    "timeout_seconds": 600,
    "notify": ["email:ops@acme.com"],
}


class ScriptedChannel:
    """An email channel whose answer to each job the test decides (``reply``)."""

    name = "email"

    def __init__(self, reply: Callable[[Job], Outcome] | None = None) -> None:
        self.jobs: list[Job] = []
        self.reply = reply or (lambda job: Outcome.ok(reached_human=True, receipt=_ref(job)))
        self.gate: asyncio.Event | None = None
        self.changed = asyncio.Condition()

    async def deliver(self, job: Job) -> Outcome:
        async with self.changed:
            self.jobs.append(job)
            self.changed.notify_all()
        if self.gate is not None and job.event == "task.created":
            await self.gate.wait()
        return self.reply(job)

    async def aclose(self) -> None:
        pass

    async def wait_jobs(self, count: int) -> list[Job]:
        async with asyncio.timeout(10), self.changed:
            await self.changed.wait_for(lambda: len(self.jobs) >= count)
        return list(self.jobs)

    def inbound(self) -> APIRouter:
        # What an email link or a Slack button does: act as the person, on its own channel,
        # through the answer path.
        router = APIRouter()

        @router.post("/answer/{task_id}")
        async def answer(task_id: str, body: dict[str, Any], ctx: Ctx, who: Human) -> Any:
            outcome = await answers.answer(ctx, task_id, who, Channel.EMAIL, body)
            if isinstance(outcome, answers.Done):
                return {"status": outcome.task.status.value}
            if isinstance(outcome, answers.Refusal):
                return {"refused": outcome.code}
            return {"invalid": outcome.problems}

        return router


def _ref(job: Job) -> dict[str, str]:
    return {"message_id": f"<{job.event_id}@test>"}


@pytest.fixture
async def app_with(database_url: str) -> AsyncIterator[Callable[..., Any]]:
    started: list[Any] = []

    async def start(channel: ScriptedChannel) -> tuple[FastAPI, httpx.AsyncClient]:
        app = create_app(make_settings(database_url), channels=[channel])
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        started.append((lifespan, client))
        return app, client

    yield start
    for lifespan, client in reversed(started):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def _deliveries(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    resp = await client.get("/api/admin/deliveries", params={"task_id": task_id})
    return sorted(resp.json(), key=lambda d: d["id"])


async def _until_settled(client: httpx.AsyncClient, task_id: str, count: int) -> list[Any]:
    async with asyncio.timeout(10):
        while True:
            rows = await _deliveries(client, task_id)
            if len(rows) >= count and all(r["status"] != "pending" for r in rows):
                return rows
            await asyncio.sleep(0.02)


async def _create(client: httpx.AsyncClient, key: str) -> str:
    created = await client.post("/api/tasks", json={**TASK, "idempotency_key": key})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_closing_notice_carries_the_receipt_of_the_first(app_with: Any) -> None:
    channel = ScriptedChannel()
    _app, client = await app_with(channel)
    task_id = await _create(client, "receipt-1")
    first = (await channel.wait_jobs(1))[0]
    assert first.event == "task.created"
    assert first.route == NotifyRoute("email", "ops@acme.com", "email")
    assert first.receipts == ()
    await _until_settled(client, task_id, 1)
    done = await client.post(
        f"/api/tasks/{task_id}/complete", json={"response": {"approved": 1 == 1}}
    )
    assert done.status_code == 200, done.text
    closing = (await channel.wait_jobs(2))[1]
    assert closing.event == "task.completed"
    assert closing.response == {"approved": True}
    assert closing.receipts == (Receipt("email", _ref(first), first.id),)
    rows = await _until_settled(client, task_id, 2)
    assert [r["status"] for r in rows] == ["delivered", "delivered"]


async def test_closing_notice_waits_for_the_first_in_flight(app_with: Any) -> None:
    channel = ScriptedChannel()
    channel.gate = asyncio.Event()  # the first notice takes its time
    app, client = await app_with(channel)
    task_id = await _create(client, "receipt-2")
    await channel.wait_jobs(1)
    done = await client.post(
        f"/api/tasks/{task_id}/complete", json={"response": {"approved": False}}
    )
    assert done.status_code == 200
    # The closing notice is due now, but its route's first notice is still being sent: a
    # claim (the dispatcher's, or this one) must leave it where it is.
    claimed = await app.state.ctx.writer.submit(ClaimDue(16))
    assert (claimed.rows, claimed.held_back) == ([], True)
    closing = (await _deliveries(client, task_id))[1]
    assert (closing["status"], closing["attempts"]) == ("pending", 0)
    assert [j.event for j in channel.jobs] == ["task.created"]
    channel.gate.set()
    jobs = await channel.wait_jobs(2)
    assert [j.event for j in jobs] == ["task.created", "task.completed"]
    assert [r.outbox_id for r in jobs[1].receipts] == [jobs[0].id]


async def test_closing_notice_replaces_a_first_that_never_went_out(app_with: Any) -> None:
    # The first notice fails and waits for its retry (seconds away) when the task ends.
    channel = ScriptedChannel(
        lambda job: (
            Outcome.fail("mail server down")
            if job.event == "task.created"
            else Outcome.ok(reached_human=True)
        )
    )
    _app, client = await app_with(channel)
    task_id = await _create(client, "receipt-3")
    await channel.wait_jobs(1)
    async with asyncio.timeout(10):
        while (await _deliveries(client, task_id))[0]["attempts"] < 1:
            await asyncio.sleep(0.02)
    await client.post(f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}})
    jobs = await channel.wait_jobs(2)
    assert jobs[1].event == "task.completed"
    assert jobs[1].receipts == ()
    first, closing = await _until_settled(client, task_id, 2)
    assert (first["status"], closing["status"]) == ("skipped", "delivered")
    assert "superseded" in first["last_error"]
    assert len(channel.jobs) == 2  # the first is not retried after the task ended


async def test_inbound_routes_answer_through_the_answer_path(app_with: Any) -> None:
    channel = ScriptedChannel()
    _app, client = await app_with(channel)
    task_id = await _create(client, "inbound-1")
    bad = await client.post(f"/api/channels/email/answer/{task_id}", json={"approved": "yes"})
    assert bad.json()["invalid"][0]["loc"] == ["response", "approved"]
    good = await client.post(f"/api/channels/email/answer/{task_id}", json={"approved": True})
    assert good.json() == {"status": "completed"}
    again = await client.post(f"/api/channels/email/answer/{task_id}", json={"approved": True})
    assert again.json() == {"refused": "TASK_ALREADY_TERMINAL"}
    view = (await client.get(f"/api/tasks/{task_id}")).json()
    assert view["completed_via_channel"] == "email"
    trail = (await client.get(f"/api/tasks/{task_id}/audit")).json()
    assert trail[-1]["channel"] == "email"
