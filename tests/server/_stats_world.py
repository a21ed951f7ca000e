"""Tasks with known outcomes and times, for the Analytics figures (``/api/stats`` and the
``/analytics`` page): answered on the dashboard and through the API, timed out by the
scheduler, cancelled, left open, and one created the day before the period."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from awaithumans.server.db.models import TaskRow
from awaithumans.server.db.types import utcnow
from tests._app_fixtures import make_settings, running_app
from tests._waiting import until

PASSWORD = "correct horse battery staple"
OPS = "ops@acme.com"
RITA = "rita@acme.com"
SAM = "sam@acme.com"
#: The period every test asks for: the whole of this day (UTC).
DAY = "2026-03-10"
START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@dataclass
class StatsWorld:
    app: FastAPI
    admin: httpx.AsyncClient
    users: dict[str, str]  # email -> user id
    tasks: dict[str, str]  # name -> task id

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )

    @asynccontextmanager
    async def signed_in(self, email: str) -> AsyncIterator[httpx.AsyncClient]:
        async with self.browser() as client:
            page = await client.get("/login")
            done = await client.post(
                "/login",
                data={
                    "csrf_token": csrf_of(page.text),
                    "email": email,
                    "password": PASSWORD,
                    "next": "/",
                },
            )
            assert done.status_code == 303, done.text
            yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


async def _create(admin: httpx.AsyncClient, title: str, **extra: Any) -> str:
    body: dict[str, Any] = {
        "task": title,
        "payload": {},
        "payload_schema": {"type": "object"},
        "response_schema": SCHEMA,
        "timeout_seconds": 3600,
        "idempotency_key": f"stats-{title}",
        **extra,
    }
    made = await admin.post("/api/tasks", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _status(admin: httpx.AsyncClient, task_id: str) -> str:
    got = await admin.get(f"/api/tasks/{task_id}")
    assert got.status_code == 200, got.text
    return str(got.json()["status"])


async def _answer_on_dashboard(world: StatsWorld, email: str, task_id: str) -> None:
    async with world.signed_in(email) as client:
        page = await client.get("/task", params={"id": task_id})
        assert page.status_code == 200, page.text
        sent = await client.post(
            "/task/submit",
            data={"csrf_token": csrf_of(page.text), "id": task_id, "f.ok": "true"},
        )
        assert sent.status_code == 303, sent.text


@asynccontextmanager
async def stats_world(database_url: str) -> AsyncIterator[StatsWorld]:
    async with running_app(make_settings(database_url)) as (app, admin):
        users: dict[str, str] = {}
        for email, name, operator in (
            (OPS, "Olga Ops", True),
            (RITA, "Rita Reviewer", False),
            (SAM, "Sam Second", False),
        ):
            made = await admin.post(
                "/api/admin/users",
                json={
                    "email": email,
                    "display_name": name,
                    "is_operator": operator,
                    "password": PASSWORD,
                },
            )
            assert made.status_code == 201, made.text
            users[email] = str(made.json()["id"])
        world = StatsWorld(app, admin, users, {})
        rita = {"user_id": users[RITA]}
        sam = {"user_id": users[SAM]}
        t = world.tasks
        t["r1"] = await _create(admin, "Refund order 1", assign_to=rita)
        t["r2"] = await _create(admin, "Refund order 2", assign_to=rita)
        t["r3"] = await _create(admin, "Refund order 3")
        t["i4"] = await _create(admin, "Invoice 4", assign_to=sam)
        t["i5"] = await _create(admin, "Invoice 5")
        t["i6"] = await _create(admin, "Invoice 6", assign_to=sam)
        t["old"] = await _create(admin, "Refund order 7")

        # Rita answers hers on the dashboard; the admin token answers through the API.
        await _answer_on_dashboard(world, RITA, t["r1"])
        await _answer_on_dashboard(world, RITA, t["r2"])
        for name in ("r3", "old"):
            done = await admin.post(
                f"/api/tasks/{t[name]}/complete", json={"response": {"ok": False}}
            )
            assert done.status_code == 200, done.text
        cancelled = await admin.post(f"/api/tasks/{t['i5']}/cancel", json={"reason": "dup"})
        assert cancelled.status_code == 200, cancelled.text

        # The scheduler times i4 out once its deadline is past.
        ctx = app.state.ctx
        past = utcnow() - timedelta(seconds=1)
        async with ctx.engine.begin() as conn:
            await conn.execute(update(TaskRow).where(TaskRow.id == t["i4"]).values(timeout_at=past))
        ctx.wake.deadline(past)

        async def timed_out() -> bool:
            return await _status(admin, t["i4"]) == "timed_out"

        await until(timed_out, timeout=15)

        # Known times: created one minute apart from 09:00, answered after 60, 120, 600 s.
        async with ctx.engine.begin() as conn:
            for i, name in enumerate(("r1", "r2", "r3", "i4", "i5", "i6")):
                await conn.execute(
                    update(TaskRow)
                    .where(TaskRow.id == t[name])
                    .values(created_at=START + timedelta(minutes=i))
                )
            for name, seconds in (("r1", 60), ("r2", 120), ("r3", 600)):
                created = START + timedelta(minutes=("r1", "r2", "r3").index(name))
                await conn.execute(
                    update(TaskRow)
                    .where(TaskRow.id == t[name])
                    .values(completed_at=created + timedelta(seconds=seconds))
                )
            # First opened 30 s and 45 s after creation (Rita's, answered on the dashboard)
            # and 300 s (i6, still open); the others were never opened by a person.
            for name, first_view in (("r1", 30), ("r2", 45), ("i6", 300)):
                created = START + timedelta(
                    minutes=("r1", "r2", "r3", "i4", "i5", "i6").index(name)
                )
                await conn.execute(
                    update(TaskRow)
                    .where(TaskRow.id == t[name])
                    .values(first_viewed_at=created + timedelta(seconds=first_view))
                )
            # One second before the period: counted nowhere.
            await conn.execute(
                update(TaskRow)
                .where(TaskRow.id == t["old"])
                .values(
                    created_at=datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC),
                    completed_at=datetime(2026, 3, 10, 0, 0, 30, tzinfo=UTC),
                )
            )
        yield world
