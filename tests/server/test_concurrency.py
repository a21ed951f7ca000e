"""Races: of N concurrent calls that each try to end or take a task, exactly one wins.

Every race runs on SQLite and on PostgreSQL, through the in-process app (``asyncio.gather``
over one ASGI app) and against a real ``awaithumans serve`` process (N independent httpx
clients, each on its own connection). The losers must get a clean 409 with a stable code,
and the stored task, its audit trail and its outbox must show exactly one winner.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from awaithumans.server.db.models import OutboxRow
from awaithumans.testing import ServerProcess
from tests._app_fixtures import make_settings, running_app

N = 20
PASSWORD = "correct horse battery staple"
# Nothing listens here: deliveries fail and are retried, the outbox rows stay.
CALLBACK_URL = "http://127.0.0.1:9/awaithumans-hook"
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"choice": {"type": "integer"}},
    "required": ["choice"],
    "additionalProperties": False,
}


@dataclass
class Target:
    """Where the race runs: the in-process app or a real server process."""

    name: str
    admin: httpx.AsyncClient
    new_client: Callable[[], httpx.AsyncClient]
    engine: AsyncEngine


@pytest.fixture
async def in_process(database_url: str) -> AsyncIterator[Target]:
    async with running_app(make_settings(database_url)) as (app, admin):

        def new_client() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            )

        yield Target("in-process", admin, new_client, app.state.ctx.engine)


@asynccontextmanager
async def server_target(server: ServerProcess, database_url: str) -> AsyncIterator[Target]:
    engine = create_async_engine(database_url)

    def new_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=server.url, timeout=30.0)

    admin = new_client()
    admin.headers["Authorization"] = f"Bearer {server.admin_token}"
    try:
        yield Target("server-process", admin, new_client, engine)
    finally:
        await admin.aclose()
        await engine.dispose()


async def create_task(admin: httpx.AsyncClient) -> str:
    """A task with a callback_url, so that its end must leave exactly one webhook row."""
    body: dict[str, Any] = {
        "task": "Pick one",
        "payload": {},
        "payload_schema": {"type": "object"},
        "response_schema": RESPONSE_SCHEMA,
        "timeout_seconds": 3600,
        "idempotency_key": f"race-{uuid.uuid4().hex}",
        "callback_url": CALLBACK_URL,
    }
    resp = await admin.post("/api/tasks", json=body)
    assert resp.status_code == 201, resp.text
    task_id: str = resp.json()["id"]
    return task_id


async def admin_clients(target: Target, n: int) -> list[httpx.AsyncClient]:
    """n independent admin clients, each with its connection already open."""
    clients = [target.new_client() for _ in range(n)]
    for client in clients:
        client.headers["Authorization"] = target.admin.headers["Authorization"]
    await asyncio.gather(*(c.get("/api/health") for c in clients))
    return clients


async def user_clients(target: Target, n: int) -> list[tuple[str, httpx.AsyncClient]]:
    """n operator users (any of them may claim any task), each signed in on a client."""
    run = uuid.uuid4().hex[:8]

    async def one(i: int) -> tuple[str, httpx.AsyncClient]:
        email = f"claimer-{run}-{i}@example.com"
        made = await target.admin.post(
            "/api/admin/users",
            json={
                "email": email,
                "display_name": f"Claimer {i}",
                "is_operator": True,
                "password": PASSWORD,
            },
        )
        assert made.status_code == 201, made.text
        client = target.new_client()
        login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return made.json()["id"], client

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def close_all(clients: list[httpx.AsyncClient]) -> None:
    await asyncio.gather(*(c.aclose() for c in clients))


def errors(responses: list[httpx.Response]) -> Counter[tuple[int, str]]:
    return Counter(
        (r.status_code, r.json().get("error", "")) for r in responses if not r.is_success
    )


async def audit_of(
    client: httpx.AsyncClient, task_id: str
) -> list[tuple[str | None, str, str | None]]:
    resp = await client.get(f"/api/tasks/{task_id}/audit")
    assert resp.status_code == 200, resp.text
    return [(r["from_status"], r["to_status"], r["actor_id"]) for r in resp.json()]


async def outbox_events(engine: AsyncEngine, task_id: str) -> list[tuple[str, str]]:
    """(kind, event) of every outbox row of the task, read straight from the table."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(OutboxRow.kind, OutboxRow.body).where(OutboxRow.task_id == task_id)
            )
        ).all()
    return [(kind, str(body.get("event"))) for kind, body in rows]


async def race_to_the_end(
    admin: httpx.AsyncClient,
    clients: list[httpx.AsyncClient],
    engine: AsyncEngine,
    *,
    with_cancels: bool,
) -> None:
    """Every client answers the same new task at once (each with its own answer) or, with
    ``with_cancels``, every other client cancels it instead. Exactly one call may win."""
    task_id = await create_task(admin)

    def call(i: int, client: httpx.AsyncClient) -> Any:
        if with_cancels and i % 2:
            return client.post(f"/api/tasks/{task_id}/cancel", json={"reason": f"r{i}"})
        return client.post(f"/api/tasks/{task_id}/complete", json={"response": {"choice": i}})

    responses = list(await asyncio.gather(*(call(i, c) for i, c in enumerate(clients))))
    winners = [i for i, r in enumerate(responses) if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    assert errors(responses) == {(409, "TASK_ALREADY_TERMINAL"): len(clients) - 1}
    won = winners[0]
    status = "cancelled" if with_cancels and won % 2 else "completed"
    answer = None if status == "cancelled" else {"choice": won}
    assert responses[won].json()["status"] == status
    assert responses[won].json()["response"] == answer

    # What is stored is the winner's, in the task, its long-poll, its audit and its outbox.
    view = (await admin.get(f"/api/tasks/{task_id}")).json()
    assert view["status"] == status
    assert view["response"] == answer
    # (A finished task's poll answers at once; across replicas it may first wait for the
    # change notice, hence the long timeout.)
    poll = (await admin.get(f"/api/tasks/{task_id}/poll", params={"timeout": 10})).json()
    assert (poll["status"], poll["response"]) == (status, answer)
    assert await audit_of(admin, task_id) == [
        (None, "created", "admin"),
        ("created", status, "admin"),
    ]
    assert await outbox_events(engine, task_id) == [("webhook", f"task.{status}")]


async def race_answers(target: Target) -> None:
    clients = await admin_clients(target, N)
    try:
        await race_to_the_end(target.admin, clients, target.engine, with_cancels=False)
    finally:
        await close_all(clients)


async def race_cancel_against_answer(target: Target) -> None:
    clients = await admin_clients(target, N)
    try:
        for _ in range(4):
            await race_to_the_end(target.admin, clients, target.engine, with_cancels=True)
    finally:
        await close_all(clients)


async def race_claims(target: Target) -> None:
    task_id = await create_task(target.admin)
    users = await user_clients(target, N)
    try:
        await asyncio.gather(*(c.get("/api/auth/me") for _, c in users))
        responses = list(
            await asyncio.gather(*(c.post(f"/api/tasks/{task_id}/claim") for _, c in users))
        )
    finally:
        await close_all([c for _, c in users])

    winners = [uid for (uid, _), r in zip(users, responses, strict=True) if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    assert errors(responses) == {(409, "TASK_ALREADY_CLAIMED"): N - 1}
    winner = winners[0]

    view = (await target.admin.get(f"/api/tasks/{task_id}")).json()
    assert view["status"] == "in_progress"
    assert view["assigned_to_user_id"] == winner
    assert await audit_of(target.admin, task_id) == [
        (None, "created", "admin"),
        ("created", "in_progress", winner),
    ]
    assert await outbox_events(target.engine, task_id) == []


async def test_exactly_one_of_n_concurrent_answers_wins(in_process: Target) -> None:
    await race_answers(in_process)


async def test_exactly_one_of_n_concurrent_claims_wins(in_process: Target) -> None:
    await race_claims(in_process)


async def test_cancel_and_answer_race_ends_the_task_once(in_process: Target) -> None:
    await race_cancel_against_answer(in_process)


async def test_races_against_a_server_process(server: ServerProcess, database_url: str) -> None:
    """The same three races over real sockets: N clients, N connections, one process.

    One test rather than three, so the suite starts one server per backend, not three.
    """
    async with server_target(server, database_url) as target:
        await race_answers(target)
        await race_claims(target)
        await race_cancel_against_answer(target)


async def test_races_across_two_server_processes(postgres_url: str, tmp_path: Path) -> None:
    """Two replicas on one PostgreSQL (SQLite is one process by construction): each has
    its own writer, so only the compare-and-set in ``lifecycle.transition`` can pick the
    single winner, and every loser must still hear the same stable 409 as within one
    process."""
    first = ServerProcess(database_url=postgres_url, workdir=tmp_path / "first")
    second = ServerProcess(
        database_url=postgres_url,
        workdir=tmp_path / "second",
        payload_key=first.payload_key,
        admin_token=first.admin_token,
    )
    for proc in (first, second):
        proc.workdir.mkdir()
    headers = {"Authorization": f"Bearer {first.admin_token}"}
    with first, second:
        # The clients alternate between the two processes; the checks read through the
        # second one.
        clients = [
            httpx.AsyncClient(base_url=proc.url, headers=headers, timeout=30.0)
            for proc in (first, second) * (N // 2)
        ]
        reader = httpx.AsyncClient(base_url=second.url, headers=headers, timeout=30.0)
        engine = create_async_engine(postgres_url)
        try:
            await asyncio.gather(*(c.get("/api/health") for c in clients))
            for round_ in range(6):
                await race_to_the_end(reader, clients, engine, with_cancels=round_ % 2 == 1)
        finally:
            await close_all([*clients, reader])
            await engine.dispose()
