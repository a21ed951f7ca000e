"""Delegation ("away until ... -> delegate to ...") through the admin API, on SQLite and
PostgreSQL: set and cleared; refused (400 ``INVALID_DELEGATE``, nothing changed) for
oneself, an unknown or inactive delegate, a cycle, a past date, half a delegation; while
it holds, new tasks for the away person (by email, id or pool) go to the delegate with a
chained "delegated" audit row per hop; once ``away_until`` passes they come back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests._app_fixtures import make_settings, running_app
from tests.policies._directory import add_user, audit_rows, create


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(make_settings(database_url)) as (app, client):
        yield app, client


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def delegate(
    client: httpx.AsyncClient, who: str, to: str | None, until: str | None
) -> httpx.Response:
    return await client.patch(
        f"/api/admin/users/{who}", json={"away_until": until, "delegate_to_user_id": to}
    )


async def test_an_away_users_tasks_go_to_the_delegate(
    admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = admin
    ann = await add_user(client, "ann", pools=["tier1"])
    ben = await add_user(client, "ben")
    until = later(days=3)
    set_ = await delegate(client, ann, ben, until)
    assert set_.status_code == 200, set_.text
    assert set_.json()["delegate_to_user_id"] == ben
    assert datetime.fromisoformat(set_.json()["away_until"]) == datetime.fromisoformat(until)

    for key, assign_to in (
        ("by-email", {"email": "ann@acme.com"}),
        ("by-id", {"user_id": ann}),
        ("by-pool", {"pool": "tier1"}),
    ):
        task = await create(client, key, assign_to)
        assert task["assigned_to_user_id"] == ben, key
        assert task["status"] == "assigned"
        created, delegated = await audit_rows(app.state.ctx.engine, task["id"])
        assert created["action"] == "created"
        assert delegated["action"] == "delegated"
        assert (delegated["from_status"], delegated["to_status"]) == ("assigned", "assigned")
        assert delegated["actor_type"] == "system"
        detail = delegated["detail"]
        assert (detail["from"], detail["to"]) == (ann, ben)
        assert datetime.fromisoformat(detail["until"]) == datetime.fromisoformat(until)
        assert "ann@acme.com is away until" in detail["message"]

    # Ben's own tasks are his; ending the delegation gives Ann hers again.
    assert (await create(client, "ben-own", {"email": "ben@acme.com"}))[
        "assigned_to_user_id"
    ] == ben
    ended = await delegate(client, ann, None, None)
    assert ended.json()["away_until"] is None
    assert ended.json()["delegate_to_user_id"] is None
    back = await create(client, "after", {"email": "ann@acme.com"})
    assert back["assigned_to_user_id"] == ann
    assert [r["action"] for r in await audit_rows(app.state.ctx.engine, back["id"])] == ["created"]


async def test_a_chain_is_followed_and_stops_before_a_deactivated_delegate(
    admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = admin
    ann, ben, cat, dan = [await add_user(client, n) for n in ("ann", "ben", "cat", "dan")]
    assert (await delegate(client, ann, ben, later(days=1))).status_code == 200
    assert (await delegate(client, ben, cat, later(days=2))).status_code == 200
    task = await create(client, "chain", {"user_id": ann})
    assert task["assigned_to_user_id"] == cat
    rows = await audit_rows(app.state.ctx.engine, task["id"])
    assert [r["action"] for r in rows] == ["created", "delegated", "delegated"]
    assert [(r["detail"]["from"], r["detail"]["to"]) for r in rows[1:]] == [(ann, ben), (ben, cat)]

    assert (await delegate(client, cat, dan, later(days=1))).status_code == 200
    assert (await client.delete(f"/api/admin/users/{dan}")).status_code == 200
    # Dan left: the chain ends with Cat, the last active person in it.
    again = await create(client, "chain-2", {"user_id": ann})
    assert again["assigned_to_user_id"] == cat


async def test_after_away_until_tasks_come_back(admin: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = admin
    ann = await add_user(client, "ann")
    ben = await add_user(client, "ben")
    until = datetime.now(UTC) + timedelta(seconds=2)
    assert (await delegate(client, ann, ben, until.isoformat())).status_code == 200
    assert (await create(client, "during", {"user_id": ann}))["assigned_to_user_id"] == ben
    # The clock, not a poll: wait out the known return time.
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.05)
    assert (await create(client, "after", {"user_id": ann}))["assigned_to_user_id"] == ann


async def test_bad_delegations_are_refused_and_change_nothing(
    admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _app, client = admin
    ann = await add_user(client, "ann")
    ben = await add_user(client, "ben")
    cat = await add_user(client, "cat")
    gone = await add_user(client, "gus")
    await client.delete(f"/api/admin/users/{gone}")
    assert (await delegate(client, ben, ann, later(days=1))).status_code == 200
    assert (await delegate(client, cat, ben, later(days=1))).status_code == 200
    before = (await client.get("/api/admin/users")).json()

    cases: list[tuple[dict[str, Any], str]] = [
        ({"away_until": later(days=1), "delegate_to_user_id": ann}, "themselves"),
        ({"away_until": later(days=1), "delegate_to_user_id": "usr_nobody"}, "No user"),
        ({"away_until": later(days=1), "delegate_to_user_id": gone}, "deactivated"),
        ({"away_until": later(days=1), "delegate_to_user_id": ben}, "cycle"),  # ben -> ann
        ({"away_until": later(days=1), "delegate_to_user_id": cat}, "cycle"),  # cat->ben->ann
        ({"away_until": later(days=-1), "delegate_to_user_id": ben}, "past"),
        ({"delegate_to_user_id": ben}, "both"),
        ({"away_until": later(days=1)}, "both"),
        ({"away_until": None, "delegate_to_user_id": ben}, "both"),
    ]
    for body, said in cases:
        resp = await client.patch(f"/api/admin/users/{ann}", json={"display_name": "X", **body})
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"] == "INVALID_DELEGATE", body
        assert said in resp.json()["message"], (body, resp.json())
    # A date without a time zone is not guessed at.
    naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    resp = await client.patch(
        f"/api/admin/users/{ann}",
        json={"away_until": naive.isoformat(), "delegate_to_user_id": ben},
    )
    assert resp.status_code == 422, resp.text
    assert (await client.get("/api/admin/users")).json() == before
