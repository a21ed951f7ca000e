"""Prefect with ``on_timeout=``: the server's timeout resumes the paused run with the default.

A real Prefect server and a real awaithumans server (its scheduler looks every 0.2 s); the
flow runs in this process and the deadline is moved into the past in the server's database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from awaithumans import is_default
from awaithumans.adapters.prefect import await_human, await_human_sync, decision_model
from awaithumans.testing import ServerProcess
from tests.adapters._tasks import expire_now
from tests.adapters.prefect.flows import Approval, Refund
from tests.adapters.prefect.test_prefect_pause import act, api, paused, task_for

REFUSE = Approval(approved=False, note="no answer in time")


@pytest.fixture(scope="module")
def aw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Overrides the package's server: its scheduler looks for expired tasks every 0.2 s, so
    a deadline moved into the past is caught at once."""
    env = {"AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2"}
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw-default"), env=env) as proc:
        yield proc


def _ask(order_id: str, amount: int) -> dict[str, Any]:
    return {
        "task": f"Refund {amount} for order {order_id}?",
        "payload_schema": Refund,
        "payload": Refund(order_id=order_id, amount=amount),
        "response_schema": Approval,
        "timeout_seconds": 600,
        "on_timeout": REFUSE,
        "poll_interval": 0.2,
    }


def _result(answer: Approval) -> dict[str, Any]:
    return {"approved": answer.approved, "note": answer.note, "by_default": is_default(answer)}


@flow
async def refund_with_default(order_id: str, amount: int) -> dict[str, Any]:
    return _result(await await_human(**_ask(order_id, amount)))


@flow
def refund_with_default_sync(order_id: str, amount: int) -> dict[str, Any]:
    return _result(await_human_sync(**_ask(order_id, amount)))


async def test_server_timeout_resumes_the_paused_run_with_the_default(
    aw_server: ServerProcess,
) -> None:
    order = f"d-{uuid.uuid4().hex[:8]}"
    run = asyncio.create_task(refund_with_default(order, 50))
    task = await task_for(aw_server, order, 50)
    flow_run = await paused(task)
    keyset = flow_run.state.state_details.run_input_keyset if flow_run.state else None
    assert keyset is not None
    expire_now(aw_server, task["id"])
    assert await asyncio.wait_for(run, 30) == {
        "approved": False,
        "note": "no answer in time",
        "by_default": True,
    }
    async with api(aw_server) as http:
        final = (await http.get(f"/api/tasks/{task['id']}")).json()
    assert (final["status"], final["response"], final["default_applied"]) == (
        "timed_out",
        REFUSE.model_dump(),
        True,
    )
    # Prefect has the outcome on record as the run's input: timed out, with the default.
    async with get_client() as prefect:
        stored = await prefect.read_flow_run_input(flow_run.id, keyset["response"])
    decision = decision_model(Approval).model_validate_json(stored).model_dump()
    assert (decision["status"], decision["response"]) == ("timed_out", REFUSE.model_dump())


async def test_a_sync_flow_gets_the_default_too(aw_server: ServerProcess) -> None:
    order = f"s-{uuid.uuid4().hex[:8]}"
    run = asyncio.create_task(asyncio.to_thread(refund_with_default_sync, order, 51))
    task = await task_for(aw_server, order, 51)
    await paused(task)
    expire_now(aw_server, task["id"])
    result = await asyncio.wait_for(run, 30)
    assert result == {"approved": False, "note": "no answer in time", "by_default": True}


async def test_an_answer_before_the_deadline_is_not_the_default(
    aw_server: ServerProcess,
) -> None:
    order = f"a-{uuid.uuid4().hex[:8]}"
    run = asyncio.create_task(refund_with_default(order, 52))
    task = await task_for(aw_server, order, 52)
    await paused(task)
    resp = await act(aw_server, task["id"], "complete", {"response": {"approved": False}})
    assert resp.status_code == 200, resp.text
    assert await asyncio.wait_for(run, 30) == {
        "approved": False,
        "note": "",
        "by_default": False,
    }
