"""Metrics of processes behind one port (``serve --workers``): any of them answers for all.

Two real ``awaithumans serve`` processes on one PostgreSQL share one
``PROMETHEUS_MULTIPROC_DIR``, as the workers of ``serve --workers`` do: a scrape of either
adds up both processes' counts.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.support.metrics import Samples, parse, value

pytestmark = pytest.mark.e2e

TOKEN = "metrics-" + secrets.token_hex(16)


async def scrape(server: ServerProcess) -> Samples:
    async with httpx.AsyncClient(base_url=server.url) as http:
        got = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert got.status_code == 200, got.text
    return parse(got.text)


def client(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=30,
    )


BODY: dict[str, Any] = {
    "task": "Approve?",
    "payload": {"amount": 5},
    "payload_schema": {"type": "object", "properties": {"amount": {"type": "integer"}}},
    "response_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}},
    "timeout_seconds": 600,
}


async def create(server: ServerProcess) -> dict[str, Any]:
    async with client(server) as http:
        made = await http.post("/api/tasks", json={**BODY, "idempotency_key": uuid.uuid4().hex})
    assert made.status_code == 201, made.text
    task: dict[str, Any] = made.json()
    return task


async def test_a_scrape_of_any_process_counts_them_all(postgres_url: str, tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    key, admin = secrets.token_hex(32), "admin-" + secrets.token_hex(16)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "AWAITHUMANS_METRICS_TOKEN": TOKEN}
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(
            ServerProcess(
                database_url=postgres_url,
                workdir=tmp_path / name,
                payload_key=key,
                admin_token=admin,
                env=env,
            )
        )
    with servers[0] as a, servers[1] as b:
        waited = await create(a)
        await create(a)
        for _ in range(3):
            await create(b)
        async with client(a) as on_a, client(b) as on_b:
            poll = asyncio.create_task(
                on_a.get(f"/api/tasks/{waited['id']}/poll", params={"timeout": 20})
            )

            # A's open long-poll, seen from B (each process writes its count every second).
            async def parked() -> bool:
                return value(await scrape(b), "awaithumans_long_polls_open") == 1

            await until(parked, timeout=10, why=a.logs)
            answered = await on_b.post(
                f"/api/tasks/{waited['id']}/complete", json={"response": {"approved": True}}
            )
            assert answered.status_code == 200, answered.text
            returned = await asyncio.wait_for(poll, 15)
            assert returned.json()["status"] == "completed"

        for server in (a, b):
            seen = await scrape(server)
            assert value(seen, "awaithumans_task_creates_total") == 5
            assert value(seen, "awaithumans_answers_total", channel="api") == 1
            # Observed by A (its poll returned), counted from B's scrape as well.
            assert value(seen, "awaithumans_answer_return_seconds_count") == 1
            assert value(seen, "awaithumans_database_up") == 1

        async def closed() -> bool:
            return value(await scrape(b), "awaithumans_long_polls_open") == 0

        await until(closed, timeout=10)
        assert any(shared.iterdir()), "the processes wrote no metric files"
