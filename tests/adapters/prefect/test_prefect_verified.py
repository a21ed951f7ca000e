"""A verified task answered in Prefect's UI: the answer is checked on the server first, and
after a rejection the run waits for the next answer, given in awaithumans."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import get_client

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.adapters.prefect.flows import refund_flow_verified
from tests.adapters.prefect.test_prefect_pause import act, api, paused, task_for
from tests.support.llm_standin import Call, ProviderStandIn, verdict
from tests.verifiers.conftest import FAST


def _note_required(call: Call) -> dict[str, object]:
    note = (call.blocks.get("answer") or {}).get("note")
    return verdict(True, "Fine.") if note else verdict(False, "Add a note.")


@pytest.fixture(scope="module")
def standin() -> Iterator[ProviderStandIn]:
    with ProviderStandIn(brain=_note_required) as running:
        yield running


@pytest.fixture(scope="module")
def aw_server(
    tmp_path_factory: pytest.TempPathFactory, standin: ProviderStandIn
) -> Iterator[ServerProcess]:
    env = {**standin.env(), **FAST}
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw"), env=env) as proc:
        yield proc


async def test_an_answer_in_prefect_goes_through_the_verifier(aw_server: ServerProcess) -> None:
    order = f"v-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow_verified(order, 48))
    task = await task_for(aw_server, order, 48)
    run = await paused(task)
    async with get_client() as prefect:
        await prefect.resume_flow_run(
            run.id, run_input={"task_id": task["id"], "response": {"approved": True}}
        )

    # The verifier turns Prefect's answer down; the run does not go on with it ...
    async def rejected() -> bool:
        async with api(aw_server) as http:
            found = (await http.get(f"/api/tasks/{task['id']}")).json()
        return bool(found["status"] == "rejected")

    await until(rejected, timeout=20, why=aw_server.logs)
    assert not flow.done()
    # ... and takes the corrected answer, given in awaithumans.
    good = {"response": {"approved": True, "note": "charged twice"}}
    assert (await act(aw_server, task["id"], "complete", good)).status_code == 200
    result = await asyncio.wait_for(flow, 30)
    assert result == {"outcome": "answered", "approved": True, "note": "charged twice"}
