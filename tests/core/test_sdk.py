"""SDK behaviour that needs no answer from a human: discovery, deadlines, sync bridging."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pickle
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from awaithumans import (
    AwaitHumansError,
    IdempotencyConflictError,
    ServerUnreachableError,
    TaskCancelledError,
    TaskTimeoutError,
    TimeoutRangeError,
    VerificationExhaustedError,
    await_human_sync,
)
from awaithumans.core._await import wait_for_answer
from awaithumans.core._client import TaskClient
from awaithumans.core._discovery import resolve_server
from awaithumans.core._wire import TaskStatus, TaskView, derive_idempotency_key
from awaithumans.testing import ServerProcess, free_port


class Q(BaseModel):
    text: str


class A(BaseModel):
    ok: bool


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("AWAITHUMANS_URL", "AWAITHUMANS_API_KEY", "AWAITHUMANS_ADMIN_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def write_dev_file(home: Path, pid: int) -> None:
    record = {"url": "http://localhost:3999", "pid": pid, "admin_token": "dev-token"}
    (home / ".awaithumans-dev.json").write_text(json.dumps(record))


def test_discovery_default(home: Path) -> None:
    target = resolve_server()
    assert (target.url, target.api_key, target.source) == ("http://localhost:3001", None, "default")


def test_discovery_dev_file_of_a_live_process(home: Path) -> None:
    write_dev_file(home, os.getpid())
    target = resolve_server()
    assert (target.url, target.api_key, target.source) == (
        "http://localhost:3999",
        "dev-token",
        "dev-file",
    )


def test_discovery_ignores_a_dead_dev_server(home: Path) -> None:
    write_dev_file(home, 2**22 + 12345)  # above pid_max defaults: no such process
    assert resolve_server().source == "default"


def test_discovery_env_beats_dev_file_and_argument_beats_env(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dev_file(home, os.getpid())
    monkeypatch.setenv("AWAITHUMANS_URL", "http://env:1")
    monkeypatch.setenv("AWAITHUMANS_API_KEY", "env-key")
    assert resolve_server().url == "http://env:1"
    assert resolve_server().api_key == "env-key"
    explicit = resolve_server("http://arg:2/", "arg-key")
    assert (explicit.url, explicit.api_key) == ("http://arg:2", "arg-key")


def test_derived_key_matches_published_sdk() -> None:
    # sha256 of the canonical JSON (sorted keys, no spaces), first 32 hex characters.
    expected = hashlib.sha256(b'{"payload":{"a":1},"task":"t"}').hexdigest()[:32]
    assert derive_idempotency_key("t", {"a": 1}) == expected == "c2ae5633bf2cbd7a624001b2f68ac6c0"


@pytest.mark.parametrize(
    "error",
    [
        TaskTimeoutError("t", 60, task_id="tsk_1"),
        TaskCancelledError("t"),
        VerificationExhaustedError("t", 3),
        ServerUnreachableError("http://x", "refused"),
        IdempotencyConflictError("k"),
        TimeoutRangeError(5, 60, 100),
    ],
)
def test_errors_have_codes_and_pickle(error: AwaitHumansError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.code == error.code
    assert str(copy) == str(error)
    assert error.code.isupper()


def test_timeout_out_of_range_is_refused_locally() -> None:
    with pytest.raises(TimeoutRangeError):
        await_human_sync(
            task="x",
            payload_schema=Q,
            payload=Q(text="x"),
            response_schema=A,
            timeout_seconds=59,
            server_url="http://127.0.0.1:9",
        )


def test_unreachable_server_is_reported_not_hung(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWAITHUMANS_CONNECT_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(ServerUnreachableError) as info:
        await_human_sync(
            task="x",
            payload_schema=Q,
            payload=Q(text="x"),
            response_schema=A,
            timeout_seconds=60,
            server_url=f"http://127.0.0.1:{free_port()}",
        )
    assert info.value.code == "SERVER_UNREACHABLE"
    assert time.monotonic() - started < 5


async def test_sdk_enforces_its_own_deadline_when_the_server_vanishes() -> None:
    now = datetime.now(UTC)
    view = TaskView(
        id="tsk_" + "0" * 24,
        idempotency_key="k",
        task="t",
        status=TaskStatus.CREATED,
        payload_schema={},
        response_schema={},
        timeout_seconds=60,
        timeout_at=now + timedelta(seconds=1),
        created_at=now,
        updated_at=now,
    )
    started = time.monotonic()
    async with TaskClient(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises((TaskTimeoutError, ServerUnreachableError)):
            await wait_for_answer(client, view, A, deadline=time.monotonic() + 1)
    # deadline + the grace the SDK gives the server's own scheduler
    assert time.monotonic() - started < 10


async def test_sync_call_works_inside_a_running_event_loop(sqlite_server: ServerProcess) -> None:
    """As in a notebook: sync code called while an event loop runs in this thread."""
    key = "sync-in-loop"

    def answer_when_created() -> None:
        with httpx.Client(
            base_url=sqlite_server.url,
            headers={"Authorization": f"Bearer {sqlite_server.admin_token}"},
        ) as api:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                items = api.get("/api/tasks").json()["items"]
                found = [t["id"] for t in items if t["idempotency_key"] == key]
                if found:
                    api.post(f"/api/tasks/{found[0]}/complete", json={"response": {"ok": True}})
                    return
                time.sleep(0.02)

    helper = threading.Thread(target=answer_when_created)
    helper.start()
    asyncio.get_running_loop()  # we are inside a loop
    result = await_human_sync(
        task="In a notebook?",
        payload_schema=Q,
        payload=Q(text="x"),
        response_schema=A,
        timeout_seconds=600,
        idempotency_key=key,
        server_url=sqlite_server.url,
        api_key=sqlite_server.admin_token,
    )
    helper.join()
    assert result == A(ok=True)
