"""Routing by role or pool passes over a member who is away (``away_until`` in the future)
while another member is not, on SQLite and PostgreSQL; when everyone is away the turns go
round them all as before and delegation hands each task on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from tests._app_fixtures import make_settings, running_app
from tests.policies._directory import add_user, audit_rows, create


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(make_settings(database_url)) as (app, client):
        yield app, client


async def away(client: httpx.AsyncClient, who: str, to: str, *, days: float) -> None:
    until = (datetime.now(UTC) + timedelta(days=days)).isoformat()
    resp = await client.patch(
        f"/api/admin/users/{who}", json={"away_until": until, "delegate_to_user_id": to}
    )
    assert resp.status_code == 200, resp.text


async def test_an_away_member_gets_no_turn(admin: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = admin
    ann = await add_user(client, "ann", pools=["tier1"])
    ben = await add_user(client, "ben", pools=["tier1"])
    cat = await add_user(client, "cat", pools=["tier1"])
    dan = await add_user(client, "dan")  # Ann's stand-in, outside the pool
    await away(client, ann, dan, days=2)
    got = [await create(client, f"k{i}", {"pool": "tier1"}) for i in range(4)]
    # Ben and Cat take turns; Ann (and through her, Dan) gets nothing while away.
    assert [t["assigned_to_user_id"] for t in got] == [*sorted([ben, cat]), *sorted([ben, cat])]
    for task in got:
        rows = await audit_rows(app.state.ctx.engine, task["id"])
        assert [r["action"] for r in rows] == ["created"]  # no delegation needed
    # Back: Ann, never assigned, is first in line again.
    ended = await client.patch(
        f"/api/admin/users/{ann}", json={"away_until": None, "delegate_to_user_id": None}
    )
    assert ended.status_code == 200, ended.text
    back = await create(client, "k-back", {"pool": "tier1"})
    assert back["assigned_to_user_id"] == ann


async def test_everyone_away_turns_go_on_and_delegation_applies(
    admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = admin
    ann = await add_user(client, "ann", roles=["finance"])
    ben = await add_user(client, "ben", roles=["finance"])
    dan = await add_user(client, "dan")
    eve = await add_user(client, "eve")
    await away(client, ann, dan, days=1)
    await away(client, ben, eve, days=1)
    first = await create(client, "e1", {"role": "finance"})
    second = await create(client, "e2", {"role": "finance"})
    stand_in = {ann: dan, ben: eve}
    picked = []
    for task in (first, second):
        created, delegated = await audit_rows(app.state.ctx.engine, task["id"])
        picked.append(created["detail"]["assigned_to"])
        assert delegated["action"] == "delegated"
        assert task["assigned_to_user_id"] == stand_in[created["detail"]["assigned_to"]]
    # Both away: the turn still goes round both of them, least recently assigned first.
    assert picked == sorted([ann, ben])
