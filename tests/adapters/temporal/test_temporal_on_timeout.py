"""Temporal with ``on_timeout=``: a timeout hands the workflow its default, marked.

Two ways a timeout reaches the workflow: the server's scheduler times the task out and
signals the workflow itself (a real Temporal dev server, ``AWAITHUMANS_TEMPORAL_ADDRESS``),
or the workflow's durable timer fires first (the time-skipping test server jumps it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from awaithumans.adapters.temporal import AwaitHumansPlugin
from awaithumans.testing import ServerProcess
from tests._temporal_fixtures import TemporalDevServer, time_skipping
from tests.adapters._tasks import expire_now
from tests.adapters.temporal.test_temporal_adapter import (  # noqa: F401 - fixture
    answer,
    client,
    find_task,
)
from tests.adapters.temporal.workflows_on_timeout import AskWithDefaultWorkflow, DefaultInput

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def direct_server(
    temporal_dev_server: TemporalDevServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # The server signals workflows itself; its scheduler looks at deadlines every 0.2 s.
    env = {
        "AWAITHUMANS_TEMPORAL_ADDRESS": temporal_dev_server.address,
        "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
    }
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw-default"), env=env) as server:
        yield server


@pytest.fixture(autouse=True)
def _server_env(direct_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    # Resolved by the activities on the worker, never recorded in the workflow history.
    monkeypatch.setenv("AWAITHUMANS_URL", direct_server.url)
    monkeypatch.setenv("AWAITHUMANS_API_KEY", direct_server.admin_token)
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")


def new_worker(temporal: Client, queue: str) -> Worker:
    plugins = [AwaitHumansPlugin()]
    return Worker(temporal, task_queue=queue, workflows=[AskWithDefaultWorkflow], plugins=plugins)


async def start_asking(
    temporal: Client, server: ServerProcess, queue: str, name: str
) -> tuple[WorkflowHandle[Any, Any], dict[str, Any]]:
    """Start the workflow (it asks with a default) and find the task it created."""
    handle = await temporal.start_workflow(
        AskWithDefaultWorkflow.run,
        DefaultInput(callback_url=None),
        id=f"wf-{name}-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
    )
    return handle, await find_task(server, f"temporal:{handle.id}:0")


def task_json(server: ServerProcess, task_id: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    return dict(httpx.get(f"{server.url}/api/tasks/{task_id}", headers=headers).json())


async def test_server_timeout_hands_the_workflow_its_default(
    client: Client,  # noqa: F811 - the fixture imported above
    direct_server: ServerProcess,
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, queue):
        handle, task = await start_asking(client, direct_server, queue, "default")
        expire_now(direct_server, str(task["id"]))
        assert await asyncio.wait_for(handle.result(), 30) == {
            "approved": False,
            "by_default": True,
        }
    final = task_json(direct_server, str(task["id"]))
    assert (final["status"], final["response"], final["default_applied"]) == (
        "timed_out",
        {"approved": False},
        True,
    )


async def test_an_answer_before_the_deadline_is_not_the_default(
    client: Client,  # noqa: F811 - the fixture imported above
    direct_server: ServerProcess,
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, queue):
        handle, task = await start_asking(client, direct_server, queue, "answered")
        await answer(direct_server, str(task["id"]), approved=False)
        assert await asyncio.wait_for(handle.result(), 30) == {
            "approved": False,
            "by_default": False,
        }


async def test_durable_timer_returns_the_default_and_cancels_the_task(
    direct_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The time-skipping test server jumps the 60 s timer while the awaithumans task is still
    # open (its clock is real): the path of a lost webhook or a relay that is down.
    async with time_skipping(tmp_path, monkeypatch) as env:
        queue = f"q-{uuid.uuid4().hex[:8]}"
        async with new_worker(env.client, queue):
            handle = await env.client.start_workflow(
                AskWithDefaultWorkflow.run,
                DefaultInput(callback_url="http://127.0.0.1:9/unused", timeout_seconds=60),
                id=f"wf-timer-{uuid.uuid4().hex[:10]}",
                task_queue=queue,
            )
            result = await asyncio.wait_for(handle.result(), 60)
    assert result == {"approved": False, "by_default": True}
    task = await find_task(direct_server, f"temporal:{handle.id}:0")
    # Closed by the workflow, so nobody answers a question it no longer waits for.
    assert task["status"] == "cancelled"
