"""The server signals workflows itself when it knows Temporal's address: no relay."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from awaithumans.testing import ServerProcess
from tests._temporal_fixtures import TemporalDevServer
from tests.adapters.temporal.test_temporal_adapter import (  # noqa: F401 - fixture
    answer,
    client,
    find_task,
    new_worker,
)
from tests.adapters.temporal.workflows import AskInput, AskWorkflow

pytestmark = pytest.mark.e2e


@pytest.fixture
def direct_server(
    temporal_dev_server: TemporalDevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerProcess]:
    env = {"AWAITHUMANS_TEMPORAL_ADDRESS": temporal_dev_server.address}
    with ServerProcess(workdir=tmp_path, env=env) as server:
        monkeypatch.setenv("AWAITHUMANS_URL", server.url)
        monkeypatch.setenv("AWAITHUMANS_API_KEY", server.admin_token)
        monkeypatch.setenv("AWAITHUMANS_QUIET", "1")
        yield server


async def test_server_signals_the_workflow_without_a_relay(
    client: Client,  # noqa: F811 - the fixture imported above
    direct_server: ServerProcess,
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, queue):
        handle = await client.start_workflow(
            AskWorkflow.run,
            AskInput(callback_url=None),
            id=f"wf-direct-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        task = await find_task(direct_server, f"temporal:{handle.id}:0")
        assert task["callback_url"] is None
        await answer(direct_server, task["id"], approved=True)
        assert await handle.result() == [{"approved": True}]
