"""With a receipt key on the worker, a signalled outcome that is not an answer (a timeout, a
cancel) must be the server's: receipts sign answers only, so a made-up ``timed_out`` signal
would otherwise hand the workflow any "default the server applied" (here: turn its refusing
``on_timeout`` default into an approval).

A real Temporal dev server, a real awaithumans server whose webhooks go nowhere (the test
alone signals) and whose scheduler looks every 0.2 s (the deadline is moved into the past in
its database), a worker in this process.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer, Worker

from awaithumans.adapters.temporal import SIGNAL_NAME, AwaitHumansPlugin
from awaithumans.core._receipts import PUBLIC_KEY_ENV
from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.adapters._tasks import expire_now
from tests.adapters.temporal.test_temporal_adapter import (  # noqa: F401 - fixture
    api,
    client,
    find_task,
)
from tests.adapters.temporal.test_temporal_receipts import (
    NOWHERE,
    failure_of,
    server_key,
    use,
)
from tests.adapters.temporal.workflows_on_timeout import AskWithDefaultWorkflow, DefaultInput

pytestmark = pytest.mark.e2e

APPROVE = {"approved": True}


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2"}
    with ServerProcess(workdir=tmp_path_factory.mktemp("quiet-timeout"), env=env) as server:
        yield server


def new_worker(temporal: Client, queue: str) -> Worker:
    plugins = [AwaitHumansPlugin()]
    return Worker(temporal, task_queue=queue, workflows=[AskWithDefaultWorkflow], plugins=plugins)


async def start(
    temporal: Client, server: ServerProcess, queue: str
) -> tuple[WorkflowHandle[Any, Any], dict[str, Any]]:
    handle = await temporal.start_workflow(
        AskWithDefaultWorkflow.run,
        DefaultInput(callback_url=NOWHERE),
        id=f"wf-rt-{uuid.uuid4().hex[:10]}",
        task_queue=queue,
    )
    return handle, await find_task(server, f"temporal:{handle.id}:0")


async def timed_out(server: ServerProcess, task_id: str) -> dict[str, Any]:
    expire_now(server, task_id)

    async def check() -> dict[str, Any] | None:
        async with api(server) as http:
            task: dict[str, Any] = (await http.get(f"/api/tasks/{task_id}")).json()
        return task if task["status"] == "timed_out" else None

    ended: dict[str, Any] = await until(check, timeout=30, why=server.logs)
    return ended


def timeout_signal(task_id: str, response: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "status": "timed_out",
        "response": response,
        "default_applied": True,
    }


async def test_a_made_up_timeout_fails_and_the_servers_passes(
    client: Client,  # noqa: F811 - the fixture imported above
    quiet_server: ServerProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(quiet_server, monkeypatch)
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(quiet_server))
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, queue):
        # Nobody answered and nothing timed out: a "timeout" whose default approves.
        handle, task = await start(client, quiet_server, queue)
        await handle.signal(SIGNAL_NAME, timeout_signal(task["id"], APPROVE))
        failure = await failure_of(handle)
        assert (failure.type, failure.details[0]["reason"]) == ("RECEIPT_INVALID", "mismatch")
        assert failure.details[0]["task_id"] == task["id"]
        assert "status 'created' there" in failure.details[0]["message"]

        # Timed out for real with the refusing default: the approving one is still a lie.
        handle, task = await start(client, quiet_server, queue)
        stored = await timed_out(quiet_server, task["id"])
        assert stored["response"] == {"approved": False}
        await handle.signal(SIGNAL_NAME, timeout_signal(task["id"], APPROVE))
        failure = await failure_of(handle)
        assert (failure.type, failure.details[0]["reason"]) == ("RECEIPT_INVALID", "mismatch")
        assert "another default applied there" in failure.details[0]["message"]

        # The server's own outcome hands the workflow its default.
        handle, task = await start(client, quiet_server, queue)
        stored = await timed_out(quiet_server, task["id"])
        await handle.signal(SIGNAL_NAME, timeout_signal(task["id"], stored["response"]))
        assert await asyncio.wait_for(handle.result(), 30) == {
            "approved": False,
            "by_default": True,
        }
    # The confirmation is in the history: a replay neither reads the server nor the key.
    monkeypatch.delenv(PUBLIC_KEY_ENV)
    replayer = Replayer(workflows=[AskWithDefaultWorkflow], plugins=[AwaitHumansPlugin()])
    await replayer.replay_workflow(await handle.fetch_history())
