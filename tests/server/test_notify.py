"""Notification routes: validated at create, delivered through the outbox, task -> notified."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from awaithumans.server.services.delivery import Job, Outcome
from tests._app_fixtures import make_settings, running_app

TASK = {
    "task": "Look at this",
    "payload": {},
    "payload_schema": {"type": "object"},
    "response_schema": {"type": "object"},
    "timeout_seconds": 600,
}


class RecordingChannel:
    """A channel as Slack or email will be: receives jobs and says they reached a human."""

    name = "email"

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.arrived = asyncio.Event()

    async def deliver(self, job: Job) -> Outcome:
        self.jobs.append(job)
        self.arrived.set()
        return Outcome.ok(reached_human=True)

    async def aclose(self) -> None:
        pass


@pytest.fixture
async def with_email(
    database_url: str,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, RecordingChannel]]:
    channel = RecordingChannel()
    settings = make_settings(database_url)
    from awaithumans.server.app import create_app

    app = create_app(settings, channels=[channel])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": "Bearer " + settings.admin_api_token.get_secret_value()},  # type: ignore[union-attr]
        ) as client:
            yield app, client, channel


async def wait_status(client: httpx.AsyncClient, task_id: str, status: str) -> None:
    async with asyncio.timeout(10):
        while (await client.get(f"/api/tasks/{task_id}")).json()["status"] != status:
            await asyncio.sleep(0.02)


async def test_delivered_notification_marks_task_notified(
    with_email: tuple[FastAPI, httpx.AsyncClient, RecordingChannel],
) -> None:
    _, client, channel = with_email
    created = await client.post(
        "/api/tasks", json={**TASK, "idempotency_key": "n-1", "notify": ["email:ops@acme.com"]}
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    async with asyncio.timeout(10):
        await channel.arrived.wait()
    assert channel.jobs[0].target == "email:ops@acme.com"
    assert channel.jobs[0].event == "task.created"
    await wait_status(client, task_id, "notified")
    audit = (await client.get(f"/api/tasks/{task_id}/audit")).json()
    assert (audit[-1]["from_status"], audit[-1]["to_status"]) == ("created", "notified")
    assert audit[-1]["detail"] == {"route": "email:ops@acme.com"}


async def test_unconfigured_channel_is_skipped_not_retried(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (_app, client):
        created = await client.post(
            "/api/tasks", json={**TASK, "idempotency_key": "n-2", "notify": ["slack:#approvals"]}
        )
        task_id = created.json()["id"]
        async with asyncio.timeout(10):
            while True:
                rows = (
                    await client.get("/api/admin/deliveries", params={"task_id": task_id})
                ).json()
                if rows and rows[0]["status"] != "pending":
                    break
                await asyncio.sleep(0.02)
        assert rows[0]["status"] == "skipped"
        assert "not configured" in rows[0]["last_error"]
        assert (await client.get(f"/api/tasks/{task_id}")).json()["status"] == "created"


async def test_bad_route_names_the_route(app_client: httpx.AsyncClient) -> None:
    resp = await app_client.post(
        "/api/tasks", json={**TASK, "idempotency_key": "n-3", "notify": ["sms:+15550100"]}
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "INVALID_NOTIFY_ROUTE"
    assert "sms:+15550100" in resp.json()["message"]
    assert (await app_client.get("/api/tasks")).json()["items"] == []
