"""``on_timeout``: a task created with a default answer times out with that default applied.

Through the JSON API of the in-process app (real lifespan, real scheduler) on SQLite and on
PostgreSQL: the default is checked against the response schema at create, is part of the
idempotency fingerprint, and at the deadline becomes the timed-out task's response, marked
``default_applied`` in the view, the long-poll and the webhook, and said in the audit row
and on the dashboard's task page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from awaithumans.server.db.models import AuditRow, OutboxRow, TaskRow
from awaithumans.server.db.types import utcnow
from awaithumans.testing import WebhookReceiver
from tests._app_fixtures import make_settings, running_app
from tests._waiting import until
from tests.dashboard.test_task_page import PASSWORD, Tags, signed_in

SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["approved"],
    "additionalProperties": False,
}
DEFAULT = {"approved": False, "note": "Nobody answered: refused by default."}


@dataclass
class App:
    app: FastAPI
    admin: httpx.AsyncClient


@asynccontextmanager
async def app_on(database_url: str) -> AsyncIterator[App]:
    # The scheduler looks at the deadlines at least every 0.2 s, so a deadline the test
    # moves into the past is caught at once (a create only wakes it for its own deadline).
    settings = make_settings(database_url, scheduler_max_sleep_seconds=0.2)
    async with running_app(settings) as (app, admin):
        yield App(app, admin)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[App]:
    async with app_on(database_url) as made:
        yield made


def body(key: str, **extra: Any) -> dict[str, Any]:
    made: dict[str, Any] = {
        "task": "Approve the refund for order #1234?",
        "payload": {"order": "1234", "amount": 250},
        "payload_schema": {"type": "object"},
        "response_schema": SCHEMA,
        "timeout_seconds": 3600,
        "idempotency_key": key,
    }
    made.update(extra)
    return made


async def create(w: App, key: str, **extra: Any) -> dict[str, Any]:
    made = await w.admin.post("/api/tasks", json=body(key, **extra))
    assert made.status_code == 201, made.text
    return dict(made.json())


async def expire(w: App, task_id: str) -> None:
    """Move the task's deadline into the past (the API refuses timeouts under 60 s)."""
    ctx = w.app.state.ctx
    async with ctx.engine.begin() as conn:
        await conn.execute(
            update(TaskRow)
            .where(TaskRow.id == task_id)
            .values(timeout_at=utcnow() - timedelta(seconds=1))
        )


async def final(w: App, task_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        got = (await w.admin.get(f"/api/tasks/{task_id}")).json()
        return dict(got) if got["status"] not in ("created", "notified", "assigned") else None

    found: dict[str, Any] = await until(check, timeout=15)
    return found


async def audit(w: App, task_id: str) -> list[dict[str, Any]]:
    return list((await w.admin.get(f"/api/tasks/{task_id}/audit")).json())


async def test_the_default_is_the_response_of_a_timed_out_task(world: App) -> None:
    task = await create(world, "with-default", on_timeout=DEFAULT)
    assert (task["status"], task["response"], task["default_applied"]) == ("created", None, False)
    plain = await create(world, "without-default")

    await expire(world, task["id"])
    await expire(world, plain["id"])
    timed = await final(world, task["id"])
    assert timed["status"] == "timed_out"
    assert timed["response"] == DEFAULT
    assert timed["default_applied"] is True
    assert timed["timed_out_at"] is not None
    # A timeout is never a person's answer.
    assert timed["completed_at"] is None
    assert timed["completed_by_user_id"] is None
    assert timed["completed_via_channel"] is None

    poll = (await world.admin.get(f"/api/tasks/{task['id']}/poll", params={"timeout": 1})).json()
    assert poll["status"] == "timed_out"
    assert poll["response"] == DEFAULT
    assert poll["default_applied"] is True

    trail = await audit(world, task["id"])
    assert [(a["action"], a["to_status"], a["channel"]) for a in trail] == [
        ("created", "created", "api"),
        ("timed_out", "timed_out", "scheduler"),
    ]
    assert trail[-1]["detail"] == {"default_applied": True}

    # Without a default nothing changes: no response, no flag, no note.
    other = await final(world, plain["id"])
    assert (other["status"], other["response"], other["default_applied"]) == (
        "timed_out",
        None,
        False,
    )
    plain_poll = await world.admin.get(f"/api/tasks/{plain['id']}/poll", params={"timeout": 1})
    assert plain_poll.json()["response"] is None
    assert plain_poll.json()["default_applied"] is False
    assert (await audit(world, plain["id"]))[-1]["detail"] is None


async def test_a_long_poll_waiting_at_the_deadline_gets_the_default(world: App) -> None:
    task = await create(world, "waiting", on_timeout=DEFAULT)
    poll = world.admin.get(f"/api/tasks/{task['id']}/poll", params={"timeout": 20})
    waiting = asyncio.ensure_future(poll)
    hub = world.app.state.ctx.hub

    async def parked() -> bool:
        return bool(hub.waiting >= 1)

    # The poll is parked in the hub before the deadline moves.
    await until(parked)
    await expire(world, task["id"])
    got = (await asyncio.wait_for(waiting, 15)).json()
    assert (got["status"], got["response"], got["default_applied"]) == (
        "timed_out",
        DEFAULT,
        True,
    )


async def test_a_default_that_does_not_fit_is_refused_and_nothing_is_stored(
    world: App,
) -> None:
    ctx = world.app.state.ctx
    for bad in ({"approved": "maybe"}, {"note": "no decision"}, {"approved": True, "x": 1}):
        refused = await world.admin.post("/api/tasks", json=body("bad", on_timeout=bad))
        assert refused.status_code == 422, refused.text
        error = refused.json()
        assert error["error"] == "SCHEMA_VALIDATION_FAILED"
        assert "on_timeout" in error["message"]
        assert error["details"]
        assert all(d["loc"][0] == "on_timeout" for d in error["details"])
    # Not a JSON object at all: the request's own validation.
    wrong = await world.admin.post("/api/tasks", json=body("bad", on_timeout=[1]))
    assert wrong.status_code == 422
    assert wrong.json()["error"] == "VALIDATION_ERROR"
    async with ctx.engine.connect() as conn:
        for table in (TaskRow, AuditRow, OutboxRow):
            count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            assert count == 0, table
    # The key was never taken: the same key with a good default is a new task.
    made = await world.admin.post("/api/tasks", json=body("bad", on_timeout=DEFAULT))
    assert made.status_code == 201
    assert made.headers.get("Idempotent-Replayed") is None


async def test_the_default_is_part_of_the_tasks_content(world: App) -> None:
    first = await create(world, "same-key", on_timeout=DEFAULT)
    again = await world.admin.post("/api/tasks", json=body("same-key", on_timeout=DEFAULT))
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first["id"]
    for other in ({"approved": True}, None):
        extra = {"on_timeout": other} if other is not None else {}
        conflict = await world.admin.post("/api/tasks", json=body("same-key", **extra))
        assert conflict.status_code == 409, other
        assert conflict.json()["error"] == "IDEMPOTENCY_CONFLICT"
    # And a task created without one conflicts with a replay that adds one.
    await create(world, "no-default")
    added = await world.admin.post("/api/tasks", json=body("no-default", on_timeout=DEFAULT))
    assert added.status_code == 409


async def test_a_human_answer_before_the_deadline_wins(world: App) -> None:
    task = await create(world, "answered", on_timeout=DEFAULT)
    witness = await create(world, "unanswered", on_timeout=DEFAULT)
    answer = {"approved": True, "note": "Duplicate charge."}
    done = await world.admin.post(f"/api/tasks/{task['id']}/complete", json={"response": answer})
    assert done.status_code == 200, done.text
    await expire(world, task["id"])
    await expire(world, witness["id"])
    # The scheduler has been through both deadlines once the other task has timed out.
    assert (await final(world, witness["id"]))["default_applied"] is True
    got = (await world.admin.get(f"/api/tasks/{task['id']}")).json()
    assert (got["status"], got["response"], got["default_applied"]) == (
        "completed",
        answer,
        False,
    )
    assert [a["action"] for a in await audit(world, task["id"])] == ["created", "completed"]


async def test_the_webhook_carries_the_default(world: App) -> None:
    with WebhookReceiver() as receiver:
        task = await create(world, "hooked", on_timeout=DEFAULT, callback_url=receiver.url)
        await expire(world, task["id"])
        (delivery,) = await asyncio.to_thread(receiver.wait_for, 1, 15)
    event = delivery.json()
    assert event["type"] == "task.timed_out"
    data = event["data"]
    assert (data["task_id"], data["status"], data["response"], data["default_applied"]) == (
        task["id"],
        "timed_out",
        DEFAULT,
        True,
    )


async def test_the_task_page_says_the_default_was_applied(world: App) -> None:
    made = await world.admin.post(
        "/api/admin/users",
        json={
            "email": "ops@acme.com",
            "display_name": "Olga Ops",
            "is_operator": True,
            "password": PASSWORD,
        },
    )
    assert made.status_code == 201, made.text
    task = await create(world, "page", on_timeout=DEFAULT)
    plain = await create(world, "page-plain")
    await expire(world, task["id"])
    await expire(world, plain["id"])
    await final(world, task["id"])
    await final(world, plain["id"])
    async with signed_in(world.app, "ops@acme.com") as browser:
        page = Tags((await browser.get(f"/task?id={task['id']}")).text)
        plain_page = Tags((await browser.get(f"/task?id={plain['id']}")).text)
    text = " ".join(page.plain.split())
    assert "Timed out, default applied" in text
    assert "Nobody answered: refused by default." in text
    assert "No person gave it." in text
    assert "The agent's default answer was applied" in text  # the audit row's note
    assert "Answered by" not in text
    assert not page.find("form", action="/task/submit")
    plain_text = " ".join(plain_page.plain.split())
    assert "This task timed out before anyone answered it." in plain_text
    assert "default applied" not in plain_text


async def test_slack_and_email_say_the_default_was_applied(world: App) -> None:
    """The one-line outcome that Slack messages and emails show once a task has ended."""
    from awaithumans.server.services.answers import load_task
    from awaithumans.server.services.display import outcome_line

    task = await create(world, "line", on_timeout=DEFAULT)
    plain = await create(world, "line-plain")
    for made in (task, plain):
        await expire(world, made["id"])
        await final(world, made["id"])
    ctx = world.app.state.ctx
    with_default, without = await load_task(ctx, task["id"]), await load_task(ctx, plain["id"])
    assert with_default is not None
    assert without is not None
    assert outcome_line(with_default) == (
        "⌛ Timed out: nobody answered in time; the agent's default answer was applied"
    )
    assert outcome_line(without) == "⌛ Timed out: nobody answered in time"
