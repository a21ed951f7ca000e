"""Metrics of processes behind one port (``serve --workers``): any of them answers for all.

Two real ``awaithumans serve`` processes on one PostgreSQL share one
``PROMETHEUS_MULTIPROC_DIR``, as the workers of ``serve --workers`` do: a scrape of either
adds up both processes' counts. And ``serve --workers 2`` itself: whichever worker a scrape
reaches, it says the same totals.
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


def workers_of(pid: int) -> dict[int, str]:
    """The supervisor's worker processes and the metrics folder each was given."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
            folder = next(
                (
                    e.split(b"=", 1)[1]
                    for e in environ
                    if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")
                ),
                b"",
            )
            found[int(entry.name)] = folder.decode()
    return found


async def test_serve_workers_share_one_metrics_folder(postgres_url: str, tmp_path: Path) -> None:
    server = ServerProcess(
        database_url=postgres_url,
        workdir=tmp_path,
        env={"AWAITHUMANS_METRICS_TOKEN": TOKEN},
        args=["--workers", "2"],
    )
    with server:
        assert server.proc is not None
        workers = workers_of(server.proc.pid)
        assert len(workers) == 2, workers
        (folder,) = set(workers.values())  # one folder, the same for both
        assert folder
        assert Path(folder).stat().st_mode & 0o777 == 0o700
        for _ in range(6):
            await create(server)
        # Both workers write there (a file per instrument kind and process id).
        writers = {int(f.stem.rsplit("_", 1)[1]) for f in Path(folder).glob("*.db")}
        assert set(workers) <= writers, (workers, sorted(p.name for p in Path(folder).iterdir()))
        # A fresh connection per scrape, answered by either worker: always the same totals.
        for _ in range(10):
            async with httpx.AsyncClient(base_url=server.url) as http:
                got = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert got.status_code == 200, got.text
            assert value(parse(got.text), "awaithumans_task_creates_total") == 6
    # Removed when the server stopped.
    assert not Path(folder).exists()
