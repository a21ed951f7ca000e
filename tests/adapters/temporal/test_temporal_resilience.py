"""The Temporal adapter when its neighbours fail: the awaithumans server restarts (gracefully
or by a crash) while a workflow waits, and the relay is down when the human answers.

Real processes throughout: a Temporal dev server, ``awaithumans serve``, ``awaithumans relay
temporal`` in a subprocess, and a worker in this process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from awaithumans.testing import ServerProcess, free_port
from tests._temporal_fixtures import TemporalDevServer
from tests.adapters.temporal.test_temporal_adapter import (
    _server_env,  # noqa: F401 - autouse: the worker's activities find the server by env
    answer,
    api,
    aw_server,  # noqa: F401 - fixture
    client,  # noqa: F401 - fixture
    delivered,
    find_task,
    new_worker,
    queue,  # noqa: F401 - fixture
    relay_url,  # noqa: F401 - fixture
    secret,  # noqa: F401 - fixture
    start,
)

pytestmark = pytest.mark.e2e


class RelayProcess:
    """``awaithumans relay temporal`` that a test can stop and start again on the same port."""

    def __init__(self, temporal_address: str, webhook_secret: str, log_path: Path) -> None:
        self.temporal_address = temporal_address
        self.secret = webhook_secret
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, "AWAITHUMANS_WEBHOOK_SECRET": self.secret}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "awaithumans._cli_entry",
                    "relay",
                    "temporal",
                    "--temporal-address",
                    self.temporal_address,
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, self.log_path.read_text()
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.proc = None


@pytest.fixture
def relay(
    temporal_dev_server: TemporalDevServer,
    secret: str,  # noqa: F811
    tmp_path: Path,
) -> Iterator[RelayProcess]:
    proc = RelayProcess(temporal_dev_server.address, secret, tmp_path / "relay.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def webhook_deliveries(server: ServerProcess, task_id: str) -> list[dict[str, Any]]:
    async with api(server) as http:
        resp = await http.get("/api/admin/deliveries", params={"task_id": task_id})
        assert resp.status_code == 200, resp.text
        # Only the webhook to the relay; a server with its own Temporal connection would add
        # a row of another kind.
        return [r for r in resp.json() if r["kind"] == "webhook"]


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_server_restart_while_the_workflow_waits(
    kill: bool,
    client: Client,  # noqa: F811
    queue: str,  # noqa: F811
    relay_url: str,  # noqa: F811
    aw_server: ServerProcess,  # noqa: F811
) -> None:
    async with new_worker(client, queue):
        handle = await start(client, queue, relay_url)
        key = f"temporal:{handle.id}:0"
        task = await find_task(aw_server, key)
        # The workflow holds no connection to the server while it waits, so a restart (or a
        # crash) is invisible to it; the task, its callback and its metadata are in the
        # database and come back with the server.
        await asyncio.to_thread(aw_server.restart, kill=kill)
        again = await find_task(aw_server, key)
        assert again["id"] == task["id"]
        assert again["status"] == task["status"] == "created"
        await answer(aw_server, task["id"], True)
        await delivered(aw_server, task["id"])
        assert await asyncio.wait_for(handle.result(), 30) == [{"approved": True}]


async def test_relay_down_when_the_human_answers(
    client: Client,  # noqa: F811
    queue: str,  # noqa: F811
    relay: RelayProcess,
    aw_server: ServerProcess,  # noqa: F811
) -> None:
    async with new_worker(client, queue):
        handle = await start(client, queue, relay.url)
        task = await find_task(aw_server, f"temporal:{handle.id}:0")
        relay.stop()
        await answer(aw_server, task["id"], True)

        # The server tries, fails (connection refused) and keeps the delivery for a retry.
        deadline = time.monotonic() + 20
        while True:
            rows = await webhook_deliveries(aw_server, task["id"])
            if rows and rows[0]["attempts"] >= 1:
                break
            assert time.monotonic() < deadline, rows
            await asyncio.sleep(0.05)
        (row,) = rows
        assert row["status"] == "pending", row
        assert row["target"].startswith(relay.url), row
        assert row["last_error"], row
        # Nothing reached the workflow meanwhile.
        events = [e.event_type async for e in handle.fetch_history_events()]
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED not in events
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED not in events

        # The relay comes back on the same port; the operator forces the retry now instead of
        # waiting out the backoff.
        await asyncio.to_thread(relay.start)
        async with api(aw_server) as http:
            resp = await http.post(f"/api/admin/deliveries/{row['id']}/redeliver")
        assert resp.status_code == 202, resp.text
        assert resp.json() == {"status": "queued"}
        await delivered(aw_server, task["id"])
        assert await asyncio.wait_for(handle.result(), 30) == [{"approved": True}]
        (done,) = await webhook_deliveries(aw_server, task["id"])
        assert done["status"] == "delivered"
        assert done["attempts"] >= 2, done
        assert done["delivered_at"] is not None


async def test_relay_down_delivery_lands_on_the_servers_own_retry(
    client: Client,  # noqa: F811
    queue: str,  # noqa: F811
    relay: RelayProcess,
    aw_server: ServerProcess,  # noqa: F811
) -> None:
    """No operator: the server's backoff (~2 s, then ~4 s) delivers once the relay is back."""
    async with new_worker(client, queue):
        handle = await start(client, queue, relay.url)
        task = await find_task(aw_server, f"temporal:{handle.id}:0")
        relay.stop()
        await answer(aw_server, task["id"], False)
        deadline = time.monotonic() + 20
        while not any(r["attempts"] >= 1 for r in await webhook_deliveries(aw_server, task["id"])):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.to_thread(relay.start)
        await delivered(aw_server, task["id"], timeout=20)
        assert await asyncio.wait_for(handle.result(), 30) == [{"approved": False}]
