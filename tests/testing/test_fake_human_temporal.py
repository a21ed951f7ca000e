"""The fake human with the Temporal adapter: the in-process server signals the workflow
(it knows Temporal's address), so a workflow test gets its answer at once, no relay."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from temporalio.client import Client

from awaithumans.testing.fake_human import FakeHuman
from tests._temporal_fixtures import TemporalDevServer
from tests.adapters.temporal.test_temporal_adapter import (  # noqa: F401 - fixture
    client,
    new_worker,
)
from tests.adapters.temporal.workflows import AskInput, AskWorkflow, Decision

pytestmark = pytest.mark.e2e


@pytest.fixture
def human(
    temporal_dev_server: TemporalDevServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeHuman]:
    with FakeHuman(temporal_address=temporal_dev_server.address) as made:
        # The worker's activities create the tasks: they find the server here.
        for name, value in made.env().items():
            monkeypatch.setenv(name, value)
        yield made


async def test_a_workflow_gets_the_fake_humans_answers(
    client: Client,  # noqa: F811 - the fixture imported above
    human: FakeHuman,
) -> None:
    human.answer(title_contains="#0", with_=Decision(approved=True))
    human.reject(title_contains="#1")
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, queue):
        result = await client.execute_workflow(
            AskWorkflow.run,
            AskInput(callback_url=None, asks=2),
            id=f"wf-fake-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
    assert result == [{"approved": True}, {"approved": False}]
    assert sorted((a.task, a.outcome) for a in human.asked) == [
        ("Approve refund #0?", "answered"),
        ("Approve refund #1?", "rejected"),
    ]
