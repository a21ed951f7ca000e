"""The Temporal workflow checks the answer's decision receipt, in a local activity on the
worker, when the worker has ``AWAITHUMANS_RECEIPT_PUBLIC_KEY`` set.

A real Temporal dev server, real awaithumans servers (one signalling workflows itself, one
whose webhooks go nowhere so the test alone signals), a worker in this process. With the
server's key the workflow gets its answer and its history replays; with another server's
key, or a signal whose answer is not the signed one, the workflow fails with
``RECEIPT_INVALID``; a key that is not a key fails before any task is created.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Replayer

from awaithumans.adapters.temporal import SIGNAL_NAME, AwaitHumansPlugin
from awaithumans.core._receipts import PUBLIC_KEY_ENV
from awaithumans.server.security import KeyRing, generate_payload_key
from awaithumans.server.security.receipts import signer_for
from awaithumans.testing import ServerProcess
from tests._temporal_fixtures import TemporalDevServer
from tests.adapters.temporal.test_temporal_adapter import (  # noqa: F401 - fixture
    answer,
    api,
    client,
    find_task,
    new_worker,
)
from tests.adapters.temporal.workflows import AskInput, AskWorkflow

pytestmark = pytest.mark.e2e

# Nobody listens there: the test alone signals the workflow.
NOWHERE = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="module")
def direct_server(
    temporal_dev_server: TemporalDevServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"AWAITHUMANS_TEMPORAL_ADDRESS": temporal_dev_server.address}
    with ServerProcess(workdir=tmp_path_factory.mktemp("direct"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(workdir=tmp_path_factory.mktemp("quiet")) as server:
        yield server


def use(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    # Resolved by the activities on the worker (this process).
    monkeypatch.setenv("AWAITHUMANS_URL", server.url)
    monkeypatch.setenv("AWAITHUMANS_API_KEY", server.admin_token)
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")


async def server_key(server: ServerProcess) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        key: str = (await http.get("/api/receipts/public-keys")).json()["keys"][0]["public_key"]
    return key


async def start(temporal: Client, queue: str, callback_url: str | None) -> WorkflowHandle[Any, Any]:
    return await temporal.start_workflow(
        AskWorkflow.run,
        AskInput(callback_url=callback_url),
        id=f"wf-rc-{uuid.uuid4().hex[:10]}",
        task_queue=queue,
    )


async def failure_of(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), 30)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_the_servers_key_passes_another_key_fails(
    client: Client,  # noqa: F811 - the fixture imported above
    direct_server: ServerProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(direct_server, monkeypatch)
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(direct_server))
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, queue):
        handle = await start(client, queue, None)
        task = await find_task(direct_server, f"temporal:{handle.id}:0")
        await answer(direct_server, task["id"], True)
        assert await asyncio.wait_for(handle.result(), 30) == [{"approved": True}]
    history = await handle.fetch_history()
    # The check ran as a local activity: its result is a marker in the history ...
    markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert any(
        m.marker_recorded_event_attributes.marker_name == "core_local_activity" for m in markers
    )
    # ... so a replay neither checks again nor reads the environment, and is deterministic.
    monkeypatch.delenv(PUBLIC_KEY_ENV)
    await Replayer(workflows=[AskWorkflow], plugins=[AwaitHumansPlugin()]).replay_workflow(history)

    # Another server's key on the worker: the answer arrives, and is not trusted.
    stranger = signer_for(KeyRing.from_text(generate_payload_key()))
    monkeypatch.setenv(PUBLIC_KEY_ENV, stranger.public_key())
    async with new_worker(client, queue):
        handle = await start(client, queue, None)
        task = await find_task(direct_server, f"temporal:{handle.id}:0")
        await answer(direct_server, task["id"], True)
        failure = await failure_of(handle)
    assert (failure.type, failure.non_retryable) == ("RECEIPT_INVALID", True)
    assert failure.details[0]["reason"] == "unknown_key"
    assert failure.details[0]["task_id"] == task["id"]


async def test_a_signal_whose_answer_is_not_the_signed_one_fails(
    client: Client,  # noqa: F811 - the fixture imported above
    quiet_server: ServerProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(quiet_server, monkeypatch)
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(quiet_server))
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, queue):
        # The person rejects; a signal carrying their receipt says "approved".
        handle = await start(client, queue, NOWHERE)
        task = await find_task(quiet_server, f"temporal:{handle.id}:0")
        await answer(quiet_server, task["id"], False)
        async with api(quiet_server) as http:
            stored = (await http.get(f"/api/tasks/{task['id']}")).json()
        assert stored["receipt"] is not None
        forged = {
            "task_id": task["id"],
            "status": "completed",
            "response": {"approved": True},
            "receipt": stored["receipt"],
        }
        await handle.signal(SIGNAL_NAME, forged)
        failure = await failure_of(handle)
        assert (failure.type, failure.details[0]["reason"]) == ("RECEIPT_INVALID", "mismatch")

        # An answer with no receipt at all (what an older server sends): refused too.
        handle = await start(client, queue, NOWHERE)
        task = await find_task(quiet_server, f"temporal:{handle.id}:0")
        await handle.signal(
            SIGNAL_NAME,
            {"task_id": task["id"], "status": "completed", "response": {"approved": True}},
        )
        failure = await failure_of(handle)
        assert (failure.type, failure.details[0]["reason"]) == ("RECEIPT_INVALID", "missing")

        # The real outcome, receipt and all, completes the workflow.
        handle = await start(client, queue, NOWHERE)
        task = await find_task(quiet_server, f"temporal:{handle.id}:0")
        await answer(quiet_server, task["id"], False)
        async with api(quiet_server) as http:
            stored = (await http.get(f"/api/tasks/{task['id']}")).json()
        genuine = {k: stored[k] for k in ("status", "response", "receipt")}
        await handle.signal(SIGNAL_NAME, {"task_id": task["id"], **genuine})
        assert await asyncio.wait_for(handle.result(), 30) == [{"approved": False}]


async def test_a_key_that_is_not_a_key_fails_before_anyone_is_asked(
    client: Client,  # noqa: F811 - the fixture imported above
    quiet_server: ServerProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(quiet_server, monkeypatch)
    monkeypatch.setenv(PUBLIC_KEY_ENV, "not-a-key")
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, queue):
        handle = await start(client, queue, NOWHERE)
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), 30)
    activity_error = info.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.details[0]["reason"]) == ("RECEIPT_INVALID", "public_key")
    async with api(quiet_server) as http:
        items = (await http.get("/api/tasks", params={"limit": 200})).json()["items"]
    assert f"temporal:{handle.id}:0" not in {i["idempotency_key"] for i in items}
