"""The Temporal adapter end to end: a real Temporal dev server, a real awaithumans server,
the relay CLI in a subprocess, and a worker in this process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Replayer, Worker

from awaithumans.adapters.temporal import SIGNAL_NAME, AwaitHumansPlugin
from awaithumans.server.security import KeyRing
from awaithumans.server.settings import Settings
from awaithumans.server.webhook_secret import webhook_secret
from awaithumans.testing import ServerProcess, free_port
from tests._temporal_fixtures import TemporalDevServer, time_skipping
from tests.adapters.temporal.workflows import AskInput, AskWorkflow

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def aw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw")) as server:
        yield server


@pytest.fixture(scope="module")
def secret(aw_server: ServerProcess) -> str:
    key = aw_server.payload_key
    return webhook_secret(Settings(payload_key=key), KeyRing.from_text(key))


@pytest.fixture(scope="module")
def relay_url(
    temporal_dev_server: TemporalDevServer, secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``awaithumans relay temporal`` as users run it."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("relay") / "relay.log"
    env = {**os.environ, "AWAITHUMANS_WEBHOOK_SECRET": secret}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "awaithumans._cli_entry",
                "relay",
                "temporal",
                "--temporal-address",
                temporal_dev_server.address,
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture
async def client(temporal_dev_server: TemporalDevServer) -> Client:
    deadline = time.monotonic() + 30
    while True:
        try:
            c = await Client.connect(temporal_dev_server.address)
            await c.count_workflows()  # the namespace answers, not just the socket
            return c
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture(autouse=True)
def _server_env(aw_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    # Resolved by the activities on the worker, never recorded in the workflow history.
    monkeypatch.setenv("AWAITHUMANS_URL", aw_server.url)
    monkeypatch.setenv("AWAITHUMANS_API_KEY", aw_server.admin_token)
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")


def new_worker(client: Client, queue: str) -> Worker:
    return Worker(client, task_queue=queue, workflows=[AskWorkflow], plugins=[AwaitHumansPlugin()])


@pytest.fixture
async def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


async def start(
    client: Client, queue: str, relay_url: str, asks: int = 1
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        AskWorkflow.run,
        AskInput(callback_url=relay_url, asks=asks),
        id=f"wf-{uuid.uuid4().hex[:10]}",
        task_queue=queue,
    )


def api(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    )


async def find_task(server: ServerProcess, key: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    async with api(server) as http:
        while True:
            items = (await http.get("/api/tasks", params={"limit": 200})).json()["items"]
            for item in items:
                if item["idempotency_key"] == key:
                    return dict(item)
            assert time.monotonic() < deadline, f"no task {key}"
            await asyncio.sleep(0.1)


async def answer(server: ServerProcess, task_id: str, approved: bool) -> None:
    async with api(server) as http:
        resp = await http.post(
            f"/api/tasks/{task_id}/complete", json={"response": {"approved": approved}}
        )
        assert resp.status_code == 200, resp.text


async def delivered(server: ServerProcess, task_id: str, timeout: float = 20) -> None:
    """Wait until the server's webhook for ``task_id`` reached the relay."""
    deadline = time.monotonic() + timeout
    async with api(server) as http:
        while True:
            rows = (await http.get("/api/admin/deliveries", params={"task_id": task_id})).json()
            if rows and rows[0]["status"] == "delivered":
                return
            assert time.monotonic() < deadline, rows
            await asyncio.sleep(0.05)


async def test_human_answer_completes_the_workflow(
    client: Client, queue: str, relay_url: str, aw_server: ServerProcess
) -> None:
    async with new_worker(client, queue):
        handle = await start(client, queue, relay_url)
        task = await find_task(aw_server, f"temporal:{handle.id}:0")
        assert task["task_metadata"]["temporal"]["workflow_id"] == handle.id
        assert task["task_metadata"]["temporal"]["namespace"] == "default"
        assert task["task_metadata"]["temporal"]["task_queue"] == queue
        await answer(aw_server, task["id"], True)
        assert await asyncio.wait_for(handle.result(), 30) == [{"approved": True}]


async def test_cancel_through_the_api_fails_the_workflow_with_its_code(
    client: Client, queue: str, relay_url: str, aw_server: ServerProcess
) -> None:
    async with new_worker(client, queue):
        handle = await start(client, queue, relay_url)
        task = await find_task(aw_server, f"temporal:{handle.id}:0")
        async with api(aw_server) as http:
            assert (await http.post(f"/api/tasks/{task['id']}/cancel")).status_code == 200
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), 30)
        cause = info.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == "TASK_CANCELLED"
        assert cause.non_retryable


async def test_parallel_asks_each_get_their_answer_and_duplicates_are_ignored(
    client: Client, queue: str, relay_url: str, aw_server: ServerProcess
) -> None:
    async with new_worker(client, queue):
        handle = await start(client, queue, relay_url, asks=2)
        first = await find_task(aw_server, f"temporal:{handle.id}:0")
        second = await find_task(aw_server, f"temporal:{handle.id}:1")
        assert first["task"] == "Approve refund #0?"
        assert second["task"] == "Approve refund #1?"
        await answer(aw_server, first["id"], False)
        await delivered(aw_server, first["id"])
        # A redelivered event, and a contradicting late one, change nothing.
        stale = {"task_id": first["id"], "status": "completed", "response": {"approved": True}}
        await handle.signal(SIGNAL_NAME, stale)
        await handle.signal(SIGNAL_NAME, stale)
        await answer(aw_server, second["id"], True)
        assert await asyncio.wait_for(handle.result(), 30) == [
            {"approved": False},
            {"approved": True},
        ]
    # The recorded history replays without a nondeterminism error: same keys, same order.
    replayer = Replayer(workflows=[AskWorkflow], plugins=[AwaitHumansPlugin()])
    await replayer.replay_workflow(await handle.fetch_history())


async def test_a_new_worker_resumes_the_wait(
    client: Client, queue: str, relay_url: str, aw_server: ServerProcess
) -> None:
    async with new_worker(client, queue):
        handle = await start(client, queue, relay_url)
        task = await find_task(aw_server, f"temporal:{handle.id}:0")
    # No worker now: the answer is recorded in the history as a signal and waits there.
    await answer(aw_server, task["id"], True)
    # The relay took the webhook and Temporal stored the signal before any worker exists.
    await delivered(aw_server, task["id"])
    async with new_worker(client, queue):
        assert await asyncio.wait_for(handle.result(), 30) == [{"approved": True}]
    # One task, not two: the resumed run found it by its idempotency key.
    async with api(aw_server) as http:
        items = (await http.get("/api/tasks", params={"limit": 200})).json()["items"]
    assert sum(i["idempotency_key"] == f"temporal:{handle.id}:0" for i in items) == 1


async def test_cancelling_the_workflow_cancels_the_task(
    client: Client, queue: str, relay_url: str, aw_server: ServerProcess
) -> None:
    async with new_worker(client, queue):
        handle = await start(client, queue, relay_url)
        task = await find_task(aw_server, f"temporal:{handle.id}:0")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), 30)
        assert isinstance(info.value.cause, CancelledError)
    async with api(aw_server) as http:
        view = (await http.get(f"/api/tasks/{task['id']}")).json()
    assert view["status"] == "cancelled"


def signed(secret: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body)
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, raw),
    }
    return raw.encode(), headers


async def test_relay_rejects_bad_requests_and_acknowledges_unknown_workflows(
    relay_url: str, secret: str
) -> None:
    event = {
        "type": "task.completed",
        "data": {
            "task_id": "t1",
            "status": "completed",
            "response": {"approved": True},
            "task_metadata": {
                "temporal": {"workflow_id": "no-such-workflow", "namespace": "default"}
            },
        },
    }
    async with httpx.AsyncClient(base_url=relay_url) as http:
        body, headers = signed(secret, event)
        bad = dict(headers, **{"webhook-signature": "v1,AAAA"})
        assert (await http.post("/", content=body, headers=bad)).status_code == 401
        body2, headers2 = signed(secret, {"type": "task.completed", "data": {"task_id": "t1"}})
        assert (await http.post("/", content=body2, headers=headers2)).status_code == 400
        resp = await http.post("/", content=body, headers=headers)
        assert resp.status_code == 200
        assert resp.json()["resumed"] is False
        assert resp.json()["outcome"] == "not_waiting"
        assert "not found" in resp.json()["reason"]


async def test_durable_timer_cancels_the_task_and_raises_timeout(
    aw_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The time-skipping test server jumps the 60 s timer; the awaithumans task is still open
    # then (its own clock is real), so this is the path of a lost webhook.
    async with time_skipping(tmp_path, monkeypatch) as env:
        queue = f"q-{uuid.uuid4().hex[:8]}"
        async with new_worker(env.client, queue):
            handle = await env.client.start_workflow(
                AskWorkflow.run,
                AskInput(callback_url="http://127.0.0.1:9/unused", timeout_seconds=60),
                id=f"wf-{uuid.uuid4().hex[:10]}",
                task_queue=queue,
            )
            with pytest.raises(WorkflowFailureError) as info:
                await asyncio.wait_for(handle.result(), 60)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "TIMEOUT_EXCEEDED"
    task = await find_task(aw_server, f"temporal:{handle.id}:0")
    assert task["status"] == "cancelled"
