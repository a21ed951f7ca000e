"""Paused runs: a flow asks, a human answers over the API, the same process goes on.

A real Prefect server (its own process) and a real awaithumans server; the flow runs in
this process, as a flow started from a script would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import PrefectHTTPStatusError

from awaithumans.adapters.prefect import decision_model
from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.adapters._tasks import expire_now
from tests.adapters.prefect.flows import Approval, refund_flow, refund_flow_sync


def api(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    )


async def task_for(server: ServerProcess, order_id: str, amount: int) -> dict[str, Any]:
    """The awaithumans task the flow created for this order (waits for it to exist)."""

    async def find() -> dict[str, Any] | None:
        async with api(server) as http:
            items = (await http.get("/api/tasks", params={"limit": 200})).json()["items"]
        for item in items:
            if item["task"] == f"Refund {amount} for order {order_id}?":
                return dict(item)
        return None

    found: dict[str, Any] = await until(find)
    return found


async def run_of(task: dict[str, Any]) -> FlowRun:
    async with get_client() as prefect:
        return await prefect.read_flow_run(UUID(task["task_metadata"]["prefect"]["flow_run_id"]))


async def paused(task: dict[str, Any]) -> FlowRun:
    """The task's run once it is paused and has saved what it waits for.

    The flow sets the Paused state first and saves its input schema and description right
    after; a resume in between is refused ("schema not found"), so tests wait for both.
    """

    async def check() -> FlowRun | None:
        run = await run_of(task)
        if run.state is None or not run.state.is_paused():
            return None
        keyset = run.state.state_details.run_input_keyset
        if keyset is None:
            return None
        async with get_client() as prefect:
            try:
                # Saved after the schema: once it is there, both are.
                await prefect.read_flow_run_input(run.id, keyset["description"])
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code == 404:
                    return None
                raise
        return run

    run: FlowRun = await until(check)
    return run


async def act(server: ServerProcess, task_id: str, verb: str, body: Any = None) -> httpx.Response:
    async with api(server) as http:
        return await http.post(f"/api/tasks/{task_id}/{verb}", json=body)


async def test_answer_through_the_api_resumes_the_paused_run(aw_server: ServerProcess) -> None:
    order = f"p-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow(order, 40))
    task = await task_for(aw_server, order, 40)
    run = await paused(task)
    assert task["idempotency_key"] == f"prefect:{run.id}:0"
    assert task["task_metadata"]["prefect"]["pause_key"] == "awaithumans-0"
    assert run.state is not None
    assert run.state.state_details.pause_key == "awaithumans-0"

    # Prefect's UI offers the decision form, with the task named in its description.
    keyset = run.state.state_details.run_input_keyset
    assert keyset is not None
    async with get_client() as prefect:
        description = await prefect.read_flow_run_input(run.id, keyset["description"])
        schema = await prefect.read_flow_run_input(run.id, keyset["schema"])
    assert f"Refund 40 for order {order}?" in description
    assert task["review_url"] in description
    assert '"approved"' in schema
    assert '"task_id"' in schema

    resp = await act(
        aw_server, task["id"], "complete", {"response": {"approved": True, "note": "ok"}}
    )
    assert resp.status_code == 200, resp.text
    assert await asyncio.wait_for(flow, 30) == {
        "outcome": "answered",
        "approved": True,
        "note": "ok",
    }

    # The decision is on record in Prefect as the run's input.
    async with get_client() as prefect:
        final = await prefect.read_flow_run(run.id)
        stored = await prefect.read_flow_run_input(run.id, keyset["response"])
    assert final.state is not None
    assert final.state.type == StateType.COMPLETED
    decision = decision_model(Approval).model_validate_json(stored)
    assert decision.model_dump() == {
        "task_id": task["id"],
        "status": "completed",
        "response": {"approved": True, "note": "ok"},
        "verification_attempt": 0,
        "answered_in": "awaithumans",
    }


async def test_a_bad_answer_is_refused_and_the_run_stays_paused(
    aw_server: ServerProcess,
) -> None:
    order = f"b-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow(order, 41))
    task = await task_for(aw_server, order, 41)
    await paused(task)
    bad = await act(aw_server, task["id"], "complete", {"response": {"approved": "maybe"}})
    assert bad.status_code == 422
    assert bad.json()["error"] == "SCHEMA_VALIDATION_FAILED"
    # Still paused after a second: five of the flow's 0.2 s polls of Prefect.
    for _ in range(10):
        still = await run_of(task)
        assert still.state is not None
        assert still.state.is_paused()
        assert not flow.done()
        await asyncio.wait({flow}, timeout=0.1)
    good = await act(aw_server, task["id"], "complete", {"response": {"approved": False}})
    assert good.status_code == 200
    assert (await asyncio.wait_for(flow, 30))["approved"] is False


async def test_cancel_reaches_the_flow_as_task_cancelled(aw_server: ServerProcess) -> None:
    order = f"c-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow(order, 42))
    task = await task_for(aw_server, order, 42)
    await paused(task)
    assert (await act(aw_server, task["id"], "cancel")).status_code == 200
    assert await asyncio.wait_for(flow, 30) == {"outcome": "TASK_CANCELLED", "task_id": task["id"]}


async def test_server_timeout_reaches_the_flow_as_task_timeout(aw_server: ServerProcess) -> None:
    order = f"t-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow(order, 43))
    task = await task_for(aw_server, order, 43)
    await paused(task)
    expire_now(aw_server, task["id"])
    result = await asyncio.wait_for(flow, 30)
    assert result == {"outcome": "TIMEOUT_EXCEEDED", "task_id": task["id"]}
    async with api(aw_server) as http:
        assert (await http.get(f"/api/tasks/{task['id']}")).json()["status"] == "timed_out"


async def test_answer_given_in_prefect_is_recorded_on_the_task(aw_server: ServerProcess) -> None:
    order = f"u-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow(order, 44))
    task = await task_for(aw_server, order, 44)
    run = await paused(task)
    # What Prefect's UI sends when someone fills in the form there.
    async with get_client() as prefect:
        result = await prefect.resume_flow_run(
            run.id, run_input={"task_id": task["id"], "response": {"approved": True}}
        )
    assert result.status.value == "ACCEPT"
    assert await asyncio.wait_for(flow, 30) == {"outcome": "answered", "approved": True, "note": ""}
    async with api(aw_server) as http:
        stored = (await http.get(f"/api/tasks/{task['id']}")).json()
    assert stored["status"] == "completed"
    assert stored["response"] == {"approved": True, "note": ""}


async def test_prefect_refuses_input_that_does_not_fit(aw_server: ServerProcess) -> None:
    order = f"r-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow(order, 45))
    task = await task_for(aw_server, order, 45)
    run = await paused(task)
    async with get_client() as prefect:
        result = await prefect.resume_flow_run(
            run.id, run_input={"task_id": task["id"], "response": {"approved": "perhaps"}}
        )
    assert result.status.value == "REJECT"
    assert (await run_of(task)).state.is_paused()  # type: ignore[union-attr]
    await act(aw_server, task["id"], "complete", {"response": {"approved": True}})
    assert (await asyncio.wait_for(flow, 30))["approved"] is True


async def test_sync_flow_asks_twice_with_two_tasks(aw_server: ServerProcess) -> None:
    order = f"s-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(asyncio.to_thread(refund_flow_sync, order, 10))
    first = await task_for(aw_server, order, 10)
    await paused(first)
    await act(aw_server, first["id"], "complete", {"response": {"approved": True}})
    second = await task_for(aw_server, order, 20)
    run = await paused(second)
    assert second["id"] != first["id"]
    assert second["idempotency_key"] == f"prefect:{run.id}:1"
    assert run.state is not None
    assert run.state.state_details.pause_key == "awaithumans-1"
    await act(aw_server, second["id"], "complete", {"response": {"approved": False}})
    assert await asyncio.wait_for(flow, 30) == {"first": True, "second": False}


async def test_outside_a_flow_is_a_clear_error() -> None:
    from awaithumans.adapters.prefect import await_human
    from awaithumans.core import ConfigurationError
    from tests.adapters.prefect.flows import Refund

    with pytest.raises(ConfigurationError, match="inside a flow"):
        await await_human(
            task="x",
            payload_schema=Refund,
            payload={"order_id": "o", "amount": 1},
            response_schema=Approval,
            timeout_seconds=600,
        )


async def test_prefect_answer_with_an_agent_key_closes_the_task(
    aw_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Agent keys may not answer tasks: the flow goes on with Prefect's answer and the task
    # is cancelled, saying where it was answered, rather than left open in the dashboard.
    async with api(aw_server) as http:
        made = await http.post(
            "/api/admin/agent-keys", json={"name": f"flow-{uuid.uuid4().hex[:6]}"}
        )
    assert made.status_code == 201, made.text
    monkeypatch.setenv("AWAITHUMANS_API_KEY", made.json()["key"])
    order = f"k-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow(order, 47))
    task = await task_for(aw_server, order, 47)
    run = await paused(task)
    async with get_client() as prefect:
        await prefect.resume_flow_run(
            run.id, run_input={"task_id": task["id"], "response": {"approved": False}}
        )
    assert await asyncio.wait_for(flow, 30) == {
        "outcome": "answered",
        "approved": False,
        "note": "",
    }
    async with api(aw_server) as http:
        stored = (await http.get(f"/api/tasks/{task['id']}")).json()
        trail = (await http.get(f"/api/tasks/{task['id']}/audit")).json()
    assert stored["status"] == "cancelled"
    assert "answered in Prefect's UI" in json.dumps(trail)
