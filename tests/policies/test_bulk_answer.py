"""Bulk answer in the dashboard: one answer for several open tasks of one form, each task
answered through the normal answer path (its audit row, its webhook), one result per task.

In-process app (real lifespan, real webhook receiver) on SQLite and PostgreSQL; people sign
in through /login and post the forms the pages render, CSRF field included.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from awaithumans.testing import WebhookReceiver
from tests._app_fixtures import make_settings, running_app
from tests.policies._world import add_people, csrf_of, dashboard_sign_in

OPS = "ops@acme.com"
RITA = "rita@acme.com"
OK_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
NOTE_SCHEMA = {
    "type": "object",
    "properties": {"note": {"type": "string", "maxLength": 20}},
    "required": ["note"],
}


@dataclass
class World:
    app: FastAPI
    admin: httpx.AsyncClient
    users: dict[str, str]  # email -> user id
    hooks: WebhookReceiver

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )

    @asynccontextmanager
    async def signed_in(self, email: str) -> AsyncIterator[httpx.AsyncClient]:
        async with self.browser() as client:
            await dashboard_sign_in(client, email)
            yield client

    async def create(self, title: str, schema: dict[str, Any] = OK_SCHEMA, **extra: Any) -> str:
        made = await self.admin.post(
            "/api/tasks",
            json={
                "task": title,
                "payload": {"order": title},
                "payload_schema": {"type": "object"},
                "response_schema": schema,
                "timeout_seconds": 3600,
                "idempotency_key": f"bulk-{title}",
                "assign_to": {"user_id": self.users[RITA]},
                "callback_url": self.hooks.url,
                **extra,
            },
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    async def task(self, task_id: str) -> dict[str, Any]:
        got = await self.admin.get(f"/api/tasks/{task_id}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    async def audit(self, task_id: str) -> list[dict[str, Any]]:
        got = await self.admin.get(f"/api/tasks/{task_id}/audit")
        assert got.status_code == 200, got.text
        return list(got.json())


def results_of(page: str) -> dict[str, tuple[str, str | None, str]]:
    """The results table: task id -> (outcome, code, reason)."""
    rows = re.findall(
        r'<tr data-task="(tsk_\w+)" data-outcome="(\w+)"(?: data-code="(\w+)")?>(.*?)</tr>',
        page,
        re.S,
    )
    out = {}
    for task_id, outcome, code, cells in rows:
        reason = re.search(r'<td class="bulk-reason"[^>]*>(.*?)</td>', cells, re.S)
        assert reason
        out[task_id] = (outcome, code or None, html.unescape(reason.group(1)).strip())
    return out


def hidden_ids(page: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="id" value="(tsk_\w+)">', page)


async def open_tasks(client: httpx.AsyncClient, *task_ids: str) -> None:
    for task_id in task_ids:
        page = await client.get("/task", params={"id": task_id})
        assert page.status_code == 200, page.text


async def choose(client: httpx.AsyncClient, *task_ids: str) -> httpx.Response:
    return await client.get("/bulk", params=[("id", t) for t in task_ids])


async def answer(
    client: httpx.AsyncClient, page: httpx.Response, task_ids: list[str], **fields: str
) -> httpx.Response:
    data: dict[str, Any] = {"csrf_token": csrf_of(page.text), "id": task_ids, **fields}
    return await client.post("/bulk", data=data)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    with WebhookReceiver() as hooks:
        async with running_app(make_settings(database_url)) as (app, admin):
            users = await add_people(
                admin, [(OPS, "Olga Ops", True), (RITA, "Rita Reviewer", False)]
            )
            yield World(app, admin, users, hooks)


async def test_three_tasks_of_one_form_are_answered_at_once(world: World) -> None:
    ids = [await world.create(f"Refund order {n}") for n in range(3)]
    async with world.signed_in(RITA) as rita:
        await open_tasks(rita, *ids)
        # The queue offers each opened task for the bulk answer.
        queue = await rita.get("/")
        for task_id in ids:
            assert (
                f'<input type="checkbox" form="bulk-form" name="id" value="{task_id}"' in queue.text
            )
        assert 'id="bulk-form"' in queue.text
        assert 'action="/bulk"' in queue.text

        chosen = await choose(rita, *ids)
        assert chosen.status_code == 200, chosen.text
        assert hidden_ids(chosen.text) == ids
        assert 'name="f.ok"' in chosen.text
        assert "Answer 3 tasks" in chosen.text
        done = await answer(rita, chosen, ids, **{"f.ok": "true"})
    assert done.status_code == 200, done.text
    assert results_of(done.text) == dict.fromkeys(ids, ("answered", None, ""))
    assert "<strong>3</strong> answered" in done.text

    for task_id in ids:
        task = await world.task(task_id)
        assert task["status"] == "completed"
        assert task["response"] == {"ok": True}
        assert task["completed_via_channel"] == "dashboard"
        assert task["completed_by_email"] == RITA
        # The normal path: its own audit row, by Rita on the dashboard.
        completed = [a for a in await world.audit(task_id) if a["to_status"] == "completed"]
        assert len(completed) == 1
        assert (completed[0]["actor_id"], completed[0]["channel"]) == (
            world.users[RITA],
            "dashboard",
        )
    # And its own webhook.
    deliveries = await asyncio.to_thread(world.hooks.wait_for, 3, 15)
    hooked = sorted(d.json()["data"]["task_id"] for d in deliveries)
    assert hooked == sorted(ids)
    assert {d.json()["type"] for d in deliveries} == {"task.completed"}


async def test_one_no_longer_assigned_is_refused_while_the_others_land(world: World) -> None:
    ids = [await world.create(f"Invoice {n}") for n in range(3)]
    taken = ids[2]
    async with world.signed_in(RITA) as rita:
        await open_tasks(rita, *ids)
        chosen = await choose(rita, *ids)
        assert chosen.status_code == 200
        # Meanwhile the operator takes the third task over.
        async with world.signed_in(OPS) as ops:
            page = await ops.get("/task", params={"id": taken})
            claimed = await ops.post(
                "/task/claim", data={"csrf_token": csrf_of(page.text), "id": taken}
            )
            assert claimed.status_code == 303, claimed.text
        done = await answer(rita, chosen, ids, **{"f.ok": "false"})
    assert done.status_code == 200, done.text
    results = results_of(done.text)
    assert results[ids[0]] == ("answered", None, "")
    assert results[ids[1]] == ("answered", None, "")
    assert results[taken] == (
        "refused",
        "NOT_ASSIGNED_TO_YOU",
        "This task isn't assigned to you any more, so your answer was not recorded.",
    )
    assert "<strong>2</strong> answered · <strong>1</strong> refused" in done.text
    for task_id in ids[:2]:
        assert (await world.task(task_id))["response"] == {"ok": False}
    still = await world.task(taken)
    assert (still["status"], still["assigned_to_user_id"]) == ("in_progress", world.users[OPS])


async def test_a_task_not_opened_is_refused_and_cannot_be_ticked(world: World) -> None:
    opened = [await world.create(f"Opened {n}") for n in range(2)]
    unopened = await world.create("Never opened")
    async with world.signed_in(RITA) as rita:
        await open_tasks(rita, *opened)
        queue = await rita.get("/")
        assert f'<input type="checkbox" disabled id="pick-{unopened}"' in queue.text
        chosen = await choose(rita, *opened, unopened)
        assert chosen.status_code == 200
        assert "open it first, or it is refused" in chosen.text
        done = await answer(rita, chosen, [*opened, unopened], **{"f.ok": "true"})
    assert done.status_code == 200
    results = results_of(done.text)
    assert [results[t][0] for t in opened] == ["answered", "answered"]
    outcome, code, reason = results[unopened]
    assert (outcome, code) == ("refused", "TASK_NOT_OPENED")
    assert "You have not opened this task" in reason
    assert (await world.task(unopened))["status"] != "completed"


async def test_tasks_of_different_forms_cannot_be_answered_together(world: World) -> None:
    yes_no = await world.create("Approve refund")
    noted = await world.create("Write a note", schema=NOTE_SCHEMA)
    async with world.signed_in(RITA) as rita:
        await open_tasks(rita, yes_no, noted)
        chosen = await choose(rita, yes_no, noted)
        assert chosen.status_code == 422
        assert "different forms" in chosen.text
        assert "Form 1: Ok" in chosen.text
        assert "Form 2: Note" in chosen.text
        assert 'action="/bulk"' not in chosen.text.split("</header>", 1)[1]
        # Posted anyway: refused as a whole, nothing answered.
        done = await answer(rita, chosen, [yes_no, noted], **{"f.ok": "true", "f.note": "x"})
    assert done.status_code == 422
    assert "different forms" in done.text
    for task_id in (yes_no, noted):
        assert (await world.task(task_id))["status"] != "completed"


async def test_csrf_sign_in_and_a_bad_answer(world: World) -> None:
    ids = [await world.create(f"Guarded {n}") for n in range(2)]
    async with world.signed_in(RITA) as rita:
        await open_tasks(rita, *ids)
        chosen = await choose(rita, *ids)
        form: dict[str, Any] = {"id": ids, "f.ok": "true"}
        for token in ({}, {"csrf_token": "forged"}):
            refused = await rita.post("/bulk", data={**token, **form})
            assert refused.status_code == 403
            assert "did not come from this site" in refused.text
        # An answer that does not fit: the form again with the problem, nothing recorded.
        bad = await answer(rita, chosen, ids, **{"f.ok": "maybe"})
        assert bad.status_code == 422
        assert "Your answer was not saved" in bad.text
        assert hidden_ids(bad.text) == ids
        assert {o for o, _c, _r in results_of(bad.text).values()} == {"invalid"}
        # Nothing chosen.
        empty = await rita.get("/bulk")
        assert empty.status_code == 422
        assert "Select at least one task" in empty.text
        too_many = await rita.get("/bulk", params=[("id", f"tsk_{n:024x}") for n in range(51)])
        assert too_many.status_code == 422
        junk = await rita.get("/bulk", params=[("id", ids[0]), ("id", "x" * 5000)])
        assert junk.status_code == 422
        assert "is not a task id" in junk.text
        assert "x" * 41 not in junk.text
        unknown = f"tsk_{0:024x}"
        missing = await answer(rita, chosen, [ids[0], unknown], **{"f.ok": "maybe"})
        assert missing.status_code == 422
        assert results_of(missing.text)[unknown] == (
            "refused",
            "TASK_NOT_FOUND",
            "There is no such task, or it is not yours to answer.",
        )
    async with world.browser() as anonymous:
        signed_out = await anonymous.post("/bulk", data=form)
        assert signed_out.status_code == 303
        assert signed_out.headers["location"].startswith("/login?next=%2Fbulk%3Fid%3Dtsk_")
        assert (await anonymous.get("/bulk")).status_code == 303
    for task_id in ids:
        assert (await world.task(task_id))["status"] != "completed"
