"""Routing by role and pool (``assign_to={"role": ...}`` / ``{"pool": ...}``), on SQLite and
PostgreSQL: members take turns, least recently assigned first (within one writer batch,
across requests, and across two server processes on one PostgreSQL); inactive members are
skipped; a group with no active member leaves the task unassigned with a note; bad shapes
are a 400 that creates nothing; the 0.1 client's shapes resolve as before."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from awaithumans.core._wire import CreateTaskRequest
from awaithumans.server.db.models import AuditRow, TaskRow, UserRow
from awaithumans.server.principals import ADMIN
from awaithumans.server.services.task_create import CreateTask, prepare_create
from awaithumans.testing import ServerProcess
from tests._app_fixtures import make_settings, running_app
from tests.policies._directory import add_user, audit_rows, create, task_body


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(make_settings(database_url)) as (app, client):
        yield app, client


async def test_pool_members_take_turns(admin: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = admin
    members = {await add_user(client, n, pools=["tier1"]) for n in ("ann", "ben", "cat")}
    await add_user(client, "dan", pools=["tier2"])  # another pool: never picked
    got = [
        (await create(client, f"k{i}", {"pool": "tier1"}))["assigned_to_user_id"] for i in range(4)
    ]
    # Nobody assigned yet: ties go by id, then each pick goes to the back of the queue.
    assert got[:3] == sorted(members)
    assert got[3] == got[0]
    task = (
        await client.get(f"/api/tasks/{(await create(client, 'k4', {'pool': 'tier1'}))['id']}")
    ).json()
    assert task["status"] == "assigned"
    assert task["assign_to"] == {"pool": "tier1"}
    assert task["assigned_to_user_id"] == got[1]
    (created,) = await audit_rows(app.state.ctx.engine, task["id"])
    assert created["action"] == "created"
    assert created["detail"]["routed_to"] == {"pool": "tier1"}
    assert created["detail"]["assigned_to"] == got[1]


async def test_a_batch_goes_round_the_pool(admin: tuple[FastAPI, httpx.AsyncClient]) -> None:
    """Three creates applied as one writer batch (``CreateTask.apply_many``, one
    transaction) go to three different people, and the next batch carries on the turn."""
    app, client = admin
    ctx = app.state.ctx
    members = [await add_user(client, n, pools=["tier1"]) for n in ("ann", "ben", "cat")]

    async def batch(keys: list[str]) -> list[str | None]:
        writes = [
            await prepare_create(
                ctx, CreateTaskRequest.model_validate(task_body(k, {"pool": "tier1"})), ADMIN
            )
            for k in keys
        ]
        async with ctx.engine.begin() as conn:
            outcomes = await CreateTask.apply_many(conn, writes)
        return [o.view.assigned_to_user_id for o in outcomes]

    first = await batch(["b1", "b2", "b3"])
    assert sorted(first) == sorted(members)  # type: ignore[type-var]
    second = await batch(["b4", "b5", "b6", "b7"])
    assert second == [*first, first[0]]
    # A replayed create is the task as made: it takes nobody's turn.
    replay = await batch(["b1"])
    assert replay == first[:1]
    assert (await batch(["b8"])) == first[1:2]


async def test_inactive_members_are_skipped(admin: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = admin
    ann = await add_user(client, "ann", roles=["finance"])
    ben = await add_user(client, "ben", roles=["finance"])
    assert (await client.delete(f"/api/admin/users/{ben}")).status_code == 200
    got = {
        (await create(client, f"k{i}", {"role": "finance"}))["assigned_to_user_id"]
        for i in range(3)
    }
    assert got == {ann}


async def test_a_group_with_no_active_member_leaves_the_task_unassigned(
    admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = admin
    gone = await add_user(client, "gus", roles=["legal"])
    await client.delete(f"/api/admin/users/{gone}")
    for key, assign_to in (("k1", {"role": "legal"}), ("k2", {"pool": "nobody-here"})):
        task = await create(client, key, assign_to)
        assert task["status"] == "created"
        assert task["assigned_to_user_id"] is None
        assert task["assign_to"] == assign_to  # the view says where it was meant to go
        (created,) = await audit_rows(app.state.ctx.engine, task["id"])
        assert created["detail"]["assigned_to"] is None
        assert "No active member" in created["detail"]["message"]
    # Operators see it in the open queue.
    listed = (await client.get("/api/tasks", params={"status": "created"})).json()["items"]
    assert {t["id"] for t in listed} >= {task["id"]}


@pytest.mark.parametrize(
    "assign_to",
    [
        {"role": "Finance"},
        {"role": ""},
        {"pool": 5},
        {"pool": None},
        {"role": "finance", "pool": "tier1"},
        {"role": "finance", "email": "a@acme.com"},
        {"pool": "tier1", "user_id": "usr_1"},
        {"pool": "tier1", "note": "x"},
    ],
)
async def test_bad_role_or_pool_shapes_are_400(
    admin: tuple[FastAPI, httpx.AsyncClient], assign_to: dict[str, Any]
) -> None:
    app, client = admin
    resp = await client.post("/api/tasks", json=task_body("k", assign_to))
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "INVALID_ASSIGNEE"
    assert "assign_to" in resp.json()["message"]
    async with app.state.ctx.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(TaskRow)) == 0


async def test_the_0_1_shapes_resolve_as_before(admin: tuple[FastAPI, httpx.AsyncClient]) -> None:
    """``{"email"}`` and ``{"user_id"}`` pin that person; ``{"emails": [...]}`` is still
    accepted, and offers the task to the listed addresses in the directory (first to claim,
    ``test_candidates.py``; names not in it stay on record)."""
    _app, client = admin
    ann = await add_user(client, "ann", pools=["tier1"])
    ben = await add_user(client, "ben")
    one = await create(client, "e1", {"email": "ANN@acme.com"})
    assert (one["assigned_to_user_id"], one["status"]) == (ann, "assigned")
    many = await create(client, "e2", {"emails": ["new@acme.com", "ben@acme.com", "ann@acme.com"]})
    assert (many["assigned_to_user_id"], many["status"]) == (None, "created")
    (offered,) = await audit_rows(_app.state.ctx.engine, many["id"])
    assert offered["detail"]["candidates"] == [ben, ann]
    assert many["assign_to"] == {"emails": ["new@acme.com", "ben@acme.com", "ann@acme.com"]}
    by_id = await create(client, "e3", {"user_id": ann})
    assert by_id["assigned_to_user_id"] == ann
    nobody = await create(client, "e4", {"email": "stranger@acme.com"})
    assert (nobody["assigned_to_user_id"], nobody["status"]) == (None, "created")
    # None of these took a pool turn.
    async with _app.state.ctx.engine.connect() as conn:
        assert await conn.scalar(select(UserRow.last_assigned_at).where(UserRow.id == ann)) is None


async def test_concurrent_creates_across_two_server_processes(
    postgres_url: str, tmp_path: Path
) -> None:
    """20 creates at once over a pool of 4, through two replicas: every member gets 5 and
    the picks, in the order they were made, go strictly round the pool."""
    first = ServerProcess(database_url=postgres_url, workdir=tmp_path / "a")
    second = ServerProcess(
        database_url=postgres_url,
        workdir=tmp_path / "b",
        payload_key=first.payload_key,
        admin_token=first.admin_token,
    )
    for proc in (first, second):
        proc.workdir.mkdir()
    headers = {"Authorization": f"Bearer {first.admin_token}"}
    engine = create_async_engine(postgres_url)
    with first, second:
        clients = [
            httpx.AsyncClient(base_url=p.url, headers=headers, timeout=30.0)
            for p in (first, second)
        ]
        try:
            members = [await add_user(clients[0], f"m{i}", pools=["tier1"]) for i in range(4)]
            made = await asyncio.gather(
                *(create(clients[i % 2], f"c{i}", {"pool": "tier1"}) for i in range(20))
            )
            counts = Counter(t["assigned_to_user_id"] for t in made)
            assert counts == dict.fromkeys(members, 5)
            # Picks of one pool are serialized, so the created rows' ids follow the picks.
            async with engine.connect() as conn:
                order = [
                    r.detail["assigned_to"]
                    for r in await conn.execute(
                        select(AuditRow.detail)
                        .where(AuditRow.action == "created")
                        .order_by(AuditRow.id)
                    )
                ]
            assert len(set(order[:4])) == 4
            assert order == order[:4] * 5
        finally:
            for c in clients:
                await c.aclose()
            await engine.dispose()
