"""A suspended Prefect run checks the answer's decision receipt when Prefect runs it again.

Real processes: a Prefect server, a served deployment whose environment has the awaithumans
server's public key (``AWAITHUMANS_RECEIPT_PUBLIC_KEY``), the awaithumans server, and
``awaithumans relay prefect``. The rerun after a person's answer finds its task completed
and checks the receipt that came with it; a rerun resumed with a run input nobody signed
(through Prefect's API, the task still open) fails with ``RECEIPT_INVALID``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments.flow_runs import arun_deployment

from awaithumans.core._receipts import PUBLIC_KEY_ENV
from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.adapters.prefect.conftest import DEPLOYMENT
from tests.adapters.prefect.test_prefect_pause import act, run_of, task_for
from tests.adapters.prefect.test_prefect_suspend import relay_url  # noqa: F401 - fixture


@pytest.fixture(scope="module", autouse=True)
def _key_for_the_deployment(aw_server: ServerProcess) -> Iterator[None]:
    # Autouse, so set before the module's served deployment starts and copies os.environ.
    with httpx.Client(base_url=aw_server.url, timeout=10) as http:
        key = http.get("/api/receipts/public-keys").json()["keys"][0]["public_key"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PUBLIC_KEY_ENV, key)
        yield


async def suspended_run(
    aw_server: ServerProcess, order: str, amount: int, **params: str
) -> tuple[dict[str, str], FlowRun]:
    await arun_deployment(
        DEPLOYMENT,
        parameters={"order_id": order, "amount": amount, **params},
        timeout=0,
    )
    task = await task_for(aw_server, order, amount)

    async def suspended() -> FlowRun | None:
        run = await run_of(task)
        return run if run.state is not None and run.state.name == "Suspended" else None

    return task, await until(suspended, timeout=60)


async def ended(run: FlowRun) -> FlowRun:
    async def final() -> FlowRun | None:
        async with get_client() as prefect:
            now = await prefect.read_flow_run(run.id)
        return now if now.state is not None and now.state.is_final() else None

    done: FlowRun = await until(final, timeout=90)
    return done


async def test_the_rerun_checks_the_receipt_of_the_answer(
    aw_server: ServerProcess,
    relay_url: str,  # noqa: F811 - the fixture imported above
    deployment: None,
    tmp_path: Path,
) -> None:
    out = tmp_path / "result.json"
    order = f"sr-{uuid.uuid4().hex[:8]}"
    task, run = await suspended_run(aw_server, order, 80, callback_url=relay_url, out=str(out))
    done = await act(aw_server, task["id"], "complete", {"response": {"approved": True}})
    assert done.status_code == 200, done.text
    final = await ended(run)
    assert final.state is not None
    assert final.state.type == StateType.COMPLETED
    assert out.with_suffix(".runs").read_text() == "run\nrun\n"
    assert json.loads(out.read_text()) == {"outcome": "answered", "approved": True}


async def test_a_rerun_resumed_with_an_unsigned_answer_fails(
    aw_server: ServerProcess, deployment: None, tmp_path: Path
) -> None:
    out = tmp_path / "result.json"
    order = f"sf-{uuid.uuid4().hex[:8]}"
    task, run = await suspended_run(aw_server, order, 81, out=str(out))
    # What a relay sends, made up: nobody answered the task.
    async with get_client() as prefect:
        result = await prefect.resume_flow_run(
            run.id,
            run_input={
                "task_id": task["id"],
                "status": "completed",
                "response": {"approved": True},
                "answered_in": "awaithumans",
            },
        )
    assert result.status.value == "ACCEPT"
    final = await ended(run)
    assert final.state is not None
    assert final.state.type == StateType.FAILED
    assert "RECEIPT_INVALID" in (final.state.message or "")
    assert out.with_suffix(".runs").read_text() == "run\nrun\n"
    assert not out.exists()
