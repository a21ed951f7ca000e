"""``awaithumans serve --workers 2``: two server processes answering on one port.

The workers share the port (uvicorn's supervisor binds it once) and nothing else but
PostgreSQL. Which worker takes a connection is up to the kernel; a worker's
``/api/health`` counts only its own long-polls, which is how these tests tell the worker
holding a waiter from the other one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from awaithumans import await_human
from awaithumans.testing import ServerProcess, WebhookReceiver
from tests._api import assert_one_timeout_webhook_each, expire_every_deadline
from tests._waiting import until
from tests.e2e.test_cli import run_cli

WORKERS = 2
FAST = {
    "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
    "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
}
OPERATOR = {"email": "ops@acme.com", "display_name": "Ops", "password": "correct horse battery"}


class Q(BaseModel):
    n: int


class A(BaseModel):
    ok: bool


def ask(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "task": f"Worker task {n}?",
        "payload": {"n": n},
        "payload_schema": Q.model_json_schema(),
        "response_schema": A.model_json_schema(),
        "timeout_seconds": 600,
        "idempotency_key": f"worker-{n}",
        **extra,
    }


class Workers:
    """``awaithumans serve --workers N`` in a subprocess (ServerProcess's env, port, log)."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.server = ServerProcess(database_url=database_url, workdir=workdir, env=FAST)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def admin_token(self) -> str:
        return self.server.admin_token

    def start(self) -> None:
        fd = os.open(self.server.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "awaithumans._cli_entry",
                    "serve",
                    "--workers",
                    str(WORKERS),
                    "--port",
                    str(self.server.port),
                ],
                env=self.server.env(),
                cwd=self.server.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def banner_token(self) -> str | None:
        for line in self.server.logs().splitlines():
            if "/setup?token=" in line:
                return line.split("/setup?token=", 1)[1].strip()
        return None

    def worker_pids(self) -> set[int]:
        """The live worker processes of the supervisor (not multiprocessing's tracker)."""
        assert self.proc is not None
        found = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and b"spawn_main" in cmdline:
                found.add(int(entry.name))
        return found

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            **kwargs,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        return self.server.logs()[-4000:]


@pytest.fixture
async def workers(postgres_url: str, tmp_path: Path) -> AsyncIterator[Workers]:
    running = Workers(postgres_url, tmp_path)
    running.start()
    try:

        async def ready() -> bool:
            # The banner is printed once the port answers; its link is what a user opens.
            return running.banner_token() is not None

        await until(ready, 90, running.logs)
        yield running
    finally:
        running.stop()
        running.server.close()


async def on_worker(workers: Workers, polls: int) -> httpx.AsyncClient | None:
    """A one-connection client whose worker holds ``polls`` long-polls, or None."""
    client = workers.client(limits=httpx.Limits(max_connections=1))
    health = (await client.get("/api/health")).json()
    if health["waiting_polls"] == polls:
        return client
    await client.aclose()
    return None


async def test_a_waiter_on_one_worker_returns_when_the_other_records_the_answer(
    workers: Workers,
) -> None:
    assert len(workers.worker_pids()) == WORKERS
    # The banner's setup link works through the port, whichever worker takes it.
    made = httpx.post(
        f"{workers.url}/api/setup/operator",
        json={"token": workers.banner_token(), **OPERATOR},
        timeout=10,
    )
    assert made.status_code == 201, made.text

    waiter = asyncio.create_task(
        await_human(
            task="Workers?",
            payload_schema=Q,
            payload=Q(n=1),
            response_schema=A,
            timeout_seconds=600,
            idempotency_key="workers-1",
            server_url=workers.url,
            api_key=workers.admin_token,
        )
    )
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(workers.client())

        async def task_id() -> str | None:
            items = (await api.get("/api/tasks")).json()["items"]
            return str(items[0]["id"]) if items else None

        found = await until(task_id, 30, workers.logs)
        holder = await until(lambda: on_worker(workers, 1), 30, workers.logs)
        stack.push_async_callback(holder.aclose)
        other = await until(lambda: on_worker(workers, 0), 30, workers.logs)
        stack.push_async_callback(other.aclose)
        # The waiter's poll is still where it was: the answer goes to the other worker.
        assert (await holder.get("/api/health")).json()["waiting_polls"] == 1

        answered_at = time.monotonic()
        answered = await other.post(f"/api/tasks/{found}/complete", json={"response": {"ok": True}})
        assert answered.status_code == 200, answered.text
        assert await asyncio.wait_for(waiter, 10) == A(ok=True)
        # Woken by the other worker's NOTIFY, not by the SDK's next re-poll (25 s).
        assert time.monotonic() - answered_at < 2.0


async def test_deadlines_and_webhooks_happen_once_across_workers(
    workers: Workers, postgres_url: str
) -> None:
    count = 10
    with WebhookReceiver() as hooks:
        async with workers.client() as api:
            ids = []
            for n in range(count):
                made = await api.post("/api/tasks", json=ask(n, callback_url=hooks.url))
                assert made.status_code == 201, made.text
                ids.append(made.json()["id"])
            # Every deadline moves into the past at once: both workers' schedulers (each
            # passing every 0.2 s) race for them, then both outboxes for the webhooks.
            await expire_every_deadline(postgres_url)
            engine = create_async_engine(postgres_url)
            try:

                async def timed_out() -> bool:
                    states = [(await api.get(f"/api/tasks/{i}")).json()["status"] for i in ids]
                    return all(s == "timed_out" for s in states) and len(hooks.deliveries) >= count

                await until(timed_out, 60, workers.logs)
                audits = [(await api.get(f"/api/tasks/{i}/audit")).json() for i in ids]
                async with engine.connect() as conn:
                    jobs = (
                        await conn.execute(
                            text("SELECT status, attempts FROM outbox WHERE kind = 'webhook'")
                        )
                    ).all()
            finally:
                await engine.dispose()
    for rows in audits:
        assert [r["to_status"] for r in rows].count("timed_out") == 1, rows
    # Each webhook was taken by one worker and sent in one attempt.
    assert sorted(jobs) == [("delivered", 1)] * count
    assert_one_timeout_webhook_each(hooks.deliveries, ids)
    assert len(hooks.deliveries) == count


async def test_a_stop_answers_open_long_polls_at_once(workers: Workers) -> None:
    pids = workers.worker_pids()
    assert len(pids) == WORKERS
    async with workers.client() as api:
        made = await api.post("/api/tasks", json=ask(1))
        assert made.status_code == 201, made.text
        poll = asyncio.create_task(
            api.get(f"/api/tasks/{made.json()['id']}/poll", params={"timeout": 30})
        )

        holder = await until(lambda: on_worker(workers, 1), 30, workers.logs)
        await holder.aclose()
        stopping = time.monotonic()
        assert workers.proc is not None
        workers.proc.send_signal(signal.SIGTERM)
        answer = await asyncio.wait_for(poll, 30)
        # Without the release, the worker would wait out the 30 s poll before stopping.
        assert answer.status_code == 503
        assert answer.json()["error"] == "SERVER_RESTARTING"
        assert await asyncio.to_thread(workers.proc.wait, 30) == 0
    assert time.monotonic() - stopping < 10
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_several_workers_are_refused_on_sqlite(tmp_path: Path, home: Path) -> None:
    db = tmp_path / "server.db"
    env = {
        "AWAITHUMANS_DATABASE_URL": f"sqlite:///{db}",
        "AWAITHUMANS_PAYLOAD_KEY": "ab" * 32,
    }
    refused = run_cli("serve", "--workers", "2", cwd=tmp_path, home=home, env=env)
    assert refused.returncode == 2
    assert "need PostgreSQL" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "Server running" not in refused.stdout
    assert not db.exists()

    zero = run_cli("serve", "--workers", "0", cwd=tmp_path, home=home, env=env)
    assert zero.returncode == 2
    assert "--workers: must be 1 or more, not 0" in zero.stderr

    # The SMTP receiver is one listener: not with several workers (refused before any
    # connection, so the database need not even exist).
    smtp = run_cli(
        "serve",
        "--workers",
        "2",
        "--smtp-inbound-port",
        "2525",
        cwd=tmp_path,
        home=home,
        env={**env, "AWAITHUMANS_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"},
    )
    assert smtp.returncode == 2
    assert "SMTP receiver" in smtp.stderr
