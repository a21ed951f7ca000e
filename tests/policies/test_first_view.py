"""Time to first view: ``tasks.first_viewed_at`` is set the first time a person opens an open
task (the dashboard's task page, the email answer page), never by an agent reading it through
the API or an operator listing the queue, and never moved by a later view; ``task_views``
keeps each person's first view. ``/api/stats`` and ``/analytics`` report it as p50/p90.

In-process app (real lifespan) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from awaithumans.server.db.models import AuditRow, TaskRow, TaskViewRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.notify.email.links import AnswerLink, answer_url
from awaithumans.server.services.stats import percentile
from awaithumans.server.settings import EmailSettings
from tests._app_fixtures import make_settings, running_app
from tests.policies._world import add_people, dashboard_sign_in

OPS = "ops@acme.com"
RITA = "rita@acme.com"
SAM = "sam@acme.com"
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@dataclass
class World:
    app: FastAPI
    admin: httpx.AsyncClient
    users: dict[str, str]  # email -> user id
    agent_key: str

    def client(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://testserver",
            headers=headers,
        )

    @asynccontextmanager
    async def signed_in(self, email: str) -> AsyncIterator[httpx.AsyncClient]:
        async with self.client() as browser:
            await dashboard_sign_in(browser, email)
            yield browser

    async def create(self, title: str, **extra: Any) -> str:
        """A task created by the agent key (so its owner is the agent, not a person)."""
        async with self.client(Authorization=f"Bearer {self.agent_key}") as agent:
            made = await agent.post(
                "/api/tasks",
                json={
                    "task": title,
                    "payload": {"order": title},
                    "payload_schema": {"type": "object"},
                    "response_schema": SCHEMA,
                    "timeout_seconds": 3600,
                    "idempotency_key": f"first-view-{title}",
                    **extra,
                },
            )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    async def first_view(self, task_id: str) -> datetime | None:
        async with self.app.state.ctx.engine.connect() as conn:
            found: datetime | None = await conn.scalar(
                select(TaskRow.first_viewed_at).where(TaskRow.id == task_id)
            )
        return found

    async def views(self, task_id: str) -> dict[str, datetime]:
        async with self.app.state.ctx.engine.connect() as conn:
            rows = await conn.execute(
                select(TaskViewRow.user_id, TaskViewRow.first_at).where(
                    TaskViewRow.task_id == task_id
                )
            )
            return {r.user_id: r.first_at for r in rows}

    async def version_and_audit(self, task_id: str) -> tuple[int, int]:
        async with self.app.state.ctx.engine.connect() as conn:
            version = await conn.scalar(select(TaskRow.version).where(TaskRow.id == task_id))
            audit = (
                await conn.execute(select(AuditRow.id).where(AuditRow.task_id == task_id))
            ).all()
        return int(version or 0), len(audit)


@asynccontextmanager
async def make_world(database_url: str, **settings: Any) -> AsyncIterator[World]:
    async with running_app(make_settings(database_url, **settings)) as (app, admin):
        users = await add_people(
            admin,
            [(OPS, "Olga Ops", True), (RITA, "Rita Reviewer", False), (SAM, "Sam Second", False)],
        )
        key = await admin.post("/api/admin/agent-keys", json={"name": "refund bot"})
        assert key.status_code == 201, key.text
        yield World(app, admin, users, str(key.json()["key"]))


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with make_world(database_url) as made:
        yield made


async def test_set_on_the_first_open_by_a_person_and_never_moved(world: World) -> None:
    task_id = await world.create("Refund order 1", assign_to={"user_id": world.users[RITA]})
    before = await world.version_and_audit(task_id)

    # The agent reads its task every way the API offers; the operator lists the queue.
    async with world.client(Authorization=f"Bearer {world.agent_key}") as agent:
        assert (await agent.get(f"/api/tasks/{task_id}")).status_code == 200
        assert (await agent.get("/api/tasks")).status_code == 200
        assert (await agent.get(f"/api/tasks/{task_id}/audit")).status_code == 200
    assert (await world.admin.get(f"/api/tasks/{task_id}")).status_code == 200
    async with world.signed_in(OPS) as ops:
        queue = await ops.get("/")
        assert queue.status_code == 200
        assert task_id in queue.text
    assert await world.first_view(task_id) is None
    assert await world.views(task_id) == {}

    # Rita opens it: the first view, hers.
    opened_from = utcnow()
    async with world.signed_in(RITA) as rita:
        page = await rita.get("/task", params={"id": task_id})
        assert page.status_code == 200
    opened_to = utcnow()
    first = await world.first_view(task_id)
    assert first is not None
    assert opened_from <= first <= opened_to
    assert await world.views(task_id) == {world.users[RITA]: first}
    # Telemetry, not a step of the task: no version bump, no audit row.
    assert await world.version_and_audit(task_id) == before

    # Rita again, then the operator: the first view stays; the operator's view is recorded.
    async with world.signed_in(RITA) as rita:
        assert (await rita.get("/task", params={"id": task_id})).status_code == 200
    async with world.signed_in(OPS) as ops:
        assert (await ops.get("/task", params={"id": task_id})).status_code == 200
    assert await world.first_view(task_id) == first
    views = await world.views(task_id)
    assert set(views) == {world.users[RITA], world.users[OPS]}
    assert views[world.users[RITA]] == first
    assert views[world.users[OPS]] >= first
    assert await world.version_and_audit(task_id) == before


async def test_a_page_someone_may_not_see_or_a_finished_task_records_nothing(
    world: World,
) -> None:
    theirs = await world.create("Refund order 2", assign_to={"user_id": world.users[SAM]})
    done = await world.create("Refund order 3", assign_to={"user_id": world.users[RITA]})
    answered = await world.admin.post(
        f"/api/tasks/{done}/complete", json={"response": {"ok": True}}
    )
    assert answered.status_code == 200, answered.text
    async with world.signed_in(RITA) as rita:
        # Sam's task is no page for Rita; her finished task opens but counts as no view.
        assert (await rita.get("/task", params={"id": theirs})).status_code == 404
        assert (await rita.get("/task", params={"id": done})).status_code == 200
    for task_id in (theirs, done):
        assert await world.first_view(task_id) is None
        assert await world.views(task_id) == {}


async def test_opening_the_email_answer_page_is_a_view(database_url: str) -> None:
    email = EmailSettings(transport="logging", from_address="approvals@acme.test")
    async with make_world(database_url, email=email) as world:
        task_id = await world.create("Refund order 4", assign_to={"user_id": world.users[RITA]})
        ctx = world.app.state.ctx
        link = answer_url(
            ctx.keyring,
            "",
            AnswerLink(world.users[RITA], task_id, "ok", True, 0, utcnow() + timedelta(hours=1)),
        )
        async with world.client() as mail_reader:
            page = await mail_reader.get(link)
            assert page.status_code == 200, page.text
        first = await world.first_view(task_id)
        assert first is not None
        assert await world.views(task_id) == {world.users[RITA]: first}


async def test_stats_and_analytics_report_time_to_first_view(world: World) -> None:
    rita = {"user_id": world.users[RITA]}
    opened = [await world.create(f"Invoice {n}", assign_to=rita) for n in range(3)]
    never = await world.create("Invoice never opened", assign_to=rita)
    async with world.signed_in(RITA) as browser:
        for task_id in opened:
            assert (await browser.get("/task", params={"id": task_id})).status_code == 200
    # The exact durations as stored, to compare the figures with.
    async with world.app.state.ctx.engine.connect() as conn:
        rows = await conn.execute(
            select(TaskRow.id, TaskRow.created_at, TaskRow.first_viewed_at).where(
                TaskRow.id.in_([*opened, never])
            )
        )
        waited = {
            r.id: (r.first_viewed_at - r.created_at).total_seconds()
            for r in rows
            if r.first_viewed_at is not None
        }
    assert set(waited) == set(opened)
    values = list(waited.values())
    expected = {"p50": percentile(values, 0.5), "p90": percentile(values, 0.9)}

    got = await world.admin.get("/api/stats", params={"group_by": "assignee"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["totals"]["created"] == 4
    assert body["totals"]["time_to_first_view_seconds"] == expected
    # Time to answer stays as it was: nothing is answered.
    assert body["totals"]["time_to_answer_seconds"] == {"p50": None, "p90": None}
    (group,) = body["groups"]
    assert group["key"] == world.users[RITA]
    assert group["figures"]["time_to_first_view_seconds"] == expected
    only_never = await world.admin.get("/api/stats", params={"title": "never"})
    assert only_never.json()["totals"]["time_to_first_view_seconds"] == {
        "p50": None,
        "p90": None,
    }

    async with world.signed_in(OPS) as ops:
        page = await ops.get("/analytics")
    assert page.status_code == 200
    assert 'data-figure="first_view_p50"' in page.text
    assert 'data-figure="first_view_p90"' in page.text
    assert "First view p50" in page.text
    # Seconds here: all three were opened within the test's few seconds.
    shown = dict(re.findall(r'data-figure="(first_view_p\d0)">([^<]*)<', page.text))
    assert set(shown) == {"first_view_p50", "first_view_p90"}
    assert all(re.fullmatch(r"\d+s", v) for v in shown.values()), shown
