"""``await_human(on_timeout=...)`` against a real server process: a timeout returns the
default, marked, and the server records it; without a default it still raises; a person's
answer before the deadline wins."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from awaithumans import TaskTimeoutError, await_human, await_human_sync, is_default
from awaithumans.testing import ServerProcess


class Refund(BaseModel):
    order: str
    amount: int


class Decision(BaseModel):
    approved: bool
    note: str = ""


REFUSE = Decision(approved=False, note="Nobody answered: refused by default.")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # The scheduler looks at deadlines every 0.2 s: one moved into the past is caught at once.
    env = {"AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2", "AWAITHUMANS_QUIET": "1"}
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw"), env=env) as proc:
        yield proc


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")


def api(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    )


def when_created(server: ServerProcess, key: str, then: Callable[[str], None]) -> threading.Thread:
    """In a thread: wait for the task with ``key`` to exist, then call ``then(task_id)``."""

    def run() -> None:
        with api(server) as http:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                items = http.get("/api/tasks", params={"limit": 200}).json()["items"]
                found = [t["id"] for t in items if t["idempotency_key"] == key]
                if found:
                    then(found[0])
                    return
                time.sleep(0.02)
        raise AssertionError(f"no task {key}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def expire(server: ServerProcess, task_id: str) -> None:
    """Move the deadline into the past in the server's database (timeouts start at 60 s)."""
    past = (datetime.now(UTC) - timedelta(seconds=1)).replace(tzinfo=None)
    with sqlite3.connect(Path(server.workdir) / "server.db") as db:
        changed = db.execute(
            "UPDATE tasks SET timeout_at = ? WHERE id = ?",
            (past.strftime("%Y-%m-%d %H:%M:%S.%f"), task_id),
        ).rowcount
    assert changed == 1


def ask(server: ServerProcess, key: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "task": f"Refund order {key}?",
        "payload_schema": Refund,
        "payload": Refund(order=key, amount=250),
        "response_schema": Decision,
        "timeout_seconds": 600,
        "idempotency_key": key,
        "server_url": server.url,
        "api_key": server.admin_token,
    }
    values.update(extra)
    return values


def task_of(server: ServerProcess, key: str) -> dict[str, Any]:
    with api(server) as http:
        items = http.get("/api/tasks", params={"limit": 200}).json()["items"]
        (task_id,) = [t["id"] for t in items if t["idempotency_key"] == key]
        return dict(http.get(f"/api/tasks/{task_id}").json())


async def test_a_timeout_returns_the_default_marked(server: ServerProcess) -> None:
    helper = when_created(server, "async-default", lambda task_id: expire(server, task_id))
    started = time.monotonic()
    answer = await asyncio.wait_for(
        await_human(**ask(server, "async-default", on_timeout=REFUSE)), 30
    )
    helper.join()
    assert time.monotonic() - started < 15
    assert answer == REFUSE
    assert isinstance(answer, Decision)
    assert is_default(answer)
    task = task_of(server, "async-default")
    assert (task["status"], task["response"], task["default_applied"]) == (
        "timed_out",
        REFUSE.model_dump(),
        True,
    )
    # Asking again with the same key finds the task ended: the same default, marked.
    again = await await_human(**ask(server, "async-default", on_timeout=REFUSE))
    assert again == REFUSE
    assert is_default(again)


def test_the_blocking_call_returns_the_default_too(server: ServerProcess) -> None:
    helper = when_created(server, "sync-default", lambda task_id: expire(server, task_id))
    answer = await_human_sync(**ask(server, "sync-default", on_timeout=REFUSE))
    helper.join()
    assert answer == REFUSE
    assert is_default(answer)


async def test_without_a_default_a_timeout_still_raises(server: ServerProcess) -> None:
    helper = when_created(server, "no-default", lambda task_id: expire(server, task_id))
    with pytest.raises(TaskTimeoutError) as info:
        await asyncio.wait_for(await_human(**ask(server, "no-default")), 30)
    helper.join()
    assert info.value.code == "TIMEOUT_EXCEEDED"
    task = task_of(server, "no-default")
    assert info.value.task_id == task["id"]
    assert (task["status"], task["response"], task["default_applied"]) == (
        "timed_out",
        None,
        False,
    )


async def test_a_persons_answer_before_the_deadline_wins(server: ServerProcess) -> None:
    def answer_it(task_id: str) -> None:
        with api(server) as http:
            done = http.post(
                f"/api/tasks/{task_id}/complete",
                json={"response": {"approved": True, "note": "Duplicate charge."}},
            )
            assert done.status_code == 200, done.text
        expire(server, task_id)

    helper = when_created(server, "answered", answer_it)
    answer = await asyncio.wait_for(await_human(**ask(server, "answered", on_timeout=REFUSE)), 30)
    helper.join()
    assert answer == Decision(approved=True, note="Duplicate charge.")
    assert not is_default(answer)
    assert task_of(server, "answered")["status"] == "completed"
