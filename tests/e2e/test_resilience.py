"""The SDK keeps waiting through server restarts; the scheduler keeps deadlines across them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from awaithumans import TaskTimeoutError, await_human
from awaithumans.testing import ServerProcess


class Ask(BaseModel):
    question: str


class Answer(BaseModel):
    ok: bool


async def start_waiting(server: ServerProcess, key: str) -> tuple[asyncio.Task[Answer], str]:
    waiter = asyncio.create_task(
        await_human(
            task="Still there?",
            payload_schema=Ask,
            payload=Ask(question="?"),
            response_schema=Answer,
            timeout_seconds=600,
            idempotency_key=key,
            server_url=server.url,
            api_key=server.admin_token,
        )
    )
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as api:
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            health = (await api.get("/api/health")).json()
            items = (await api.get("/api/tasks")).json()["items"]
            mine = [t["id"] for t in items if t["idempotency_key"] == key]
            if mine and health["waiting_polls"] >= 1:
                return waiter, mine[0]
            await asyncio.sleep(0.02)
    raise AssertionError("the SDK never started waiting")


async def answer(server: ServerProcess, task_id: str) -> None:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as api:
        resp = await api.post(f"/api/tasks/{task_id}/complete", json={"response": {"ok": True}})
        assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_sdk_waits_through_a_server_restart(server: ServerProcess, kill: bool) -> None:
    waiter, task_id = await start_waiting(server, f"restart-{kill}")
    await asyncio.to_thread(server.restart, kill=kill)
    assert not waiter.done()
    await answer(server, task_id)
    assert await asyncio.wait_for(waiter, 15) == Answer(ok=True)


def _set_deadline(db: Path, task_id: str, when: datetime) -> None:
    # Tests cannot wait the 60 s minimum timeout; move the stored deadline instead.
    stamp = when.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE tasks SET timeout_at = ? WHERE id = ?", (stamp, task_id))


def _timeout_row(db: Path, task_id: str) -> tuple[str, str | None, str | None]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT status, timeout_at, timed_out_at FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()
    return row[0], row[1], row[2]


@pytest.fixture
def fast_scheduler_server(tmp_path: Path) -> Iterator[ServerProcess]:
    # The scheduler re-reads its schedule at least this often, so it notices deadlines that
    # the test moves behind its back (a new task would wake it; an UPDATE does not).
    proc = ServerProcess(workdir=tmp_path, env={"AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2"})
    proc.start()
    yield proc
    proc.close()


async def test_deadline_fires_within_a_second(fast_scheduler_server: ServerProcess) -> None:
    server = fast_scheduler_server
    db = server.workdir / "server.db"
    waiter, task_id = await start_waiting(server, "deadline-1")
    _set_deadline(db, task_id, datetime.now(UTC) + timedelta(seconds=1))
    with pytest.raises(TaskTimeoutError) as info:
        await asyncio.wait_for(waiter, 10)
    assert info.value.code == "TIMEOUT_EXCEEDED"
    status, due, fired = _timeout_row(db, task_id)
    assert status == "timed_out"
    assert due is not None
    assert fired is not None
    late = datetime.fromisoformat(fired) - datetime.fromisoformat(due)
    assert timedelta(0) <= late < timedelta(seconds=1)


async def test_deadline_that_passed_while_down_fires_at_start(
    fast_scheduler_server: ServerProcess,
) -> None:
    server = fast_scheduler_server
    db = server.workdir / "server.db"
    waiter, task_id = await start_waiting(server, "deadline-2")
    server.stop()
    _set_deadline(db, task_id, datetime.now(UTC) - timedelta(seconds=5))
    await asyncio.to_thread(server.start)
    with pytest.raises(TaskTimeoutError):
        await asyncio.wait_for(waiter, 15)
    assert _timeout_row(db, task_id)[0] == "timed_out"
