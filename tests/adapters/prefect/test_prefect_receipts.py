"""The Prefect flow checks the answer's decision receipt when a public key is set.

A real Prefect server and a real awaithumans server; the flow pauses in this process. With
the server's key the flow gets the answer; with another server's key it fails with
``ReceiptInvalidError``; a run input that claims an answer nobody signed (resumed through
Prefect's API) fails too, and an answer given in Prefect's own UI, recorded on the task,
passes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType

from awaithumans import ReceiptInvalidError
from awaithumans.adapters._receipts import check_answer
from awaithumans.core._ask import Ask
from awaithumans.core._client import TaskClient
from awaithumans.core._receipts import PUBLIC_KEY_ENV, receipt_check
from awaithumans.core._wire import PollResponse, TaskStatus
from awaithumans.server.security import KeyRing, generate_payload_key
from awaithumans.server.security.receipts import signer_for
from awaithumans.testing import ServerProcess
from tests.adapters.prefect.flows import Approval, Refund, refund_flow
from tests.adapters.prefect.test_prefect_pause import act, api, paused, run_of, task_for


async def server_key(server: ServerProcess) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        key: str = (await http.get("/api/receipts/public-keys")).json()["keys"][0]["public_key"]
    return key


async def resumed_with(
    aw_server: ServerProcess, order: str, amount: int, claim: dict[str, Any]
) -> tuple[asyncio.Task[dict[str, Any]], dict[str, Any]]:
    """Run the refund flow to its pause, then resume it through Prefect's API with ``claim``
    as the run input (the task's id added): the running flow and its task."""
    flow = asyncio.create_task(refund_flow(order, amount))
    task = await task_for(aw_server, order, amount)
    run = await paused(task)
    async with get_client() as prefect:
        result = await prefect.resume_flow_run(run.id, run_input={"task_id": task["id"], **claim})
    assert result.status.value == "ACCEPT"
    return flow, task


async def test_the_servers_key_passes_another_key_fails(
    aw_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))
    order = f"k-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow(order, 60))
    task = await task_for(aw_server, order, 60)
    await paused(task)
    done = await act(aw_server, task["id"], "complete", {"response": {"approved": True}})
    assert done.status_code == 200, done.text
    assert await asyncio.wait_for(flow, 30) == {"outcome": "answered", "approved": True, "note": ""}

    # Another server's key: the answer arrives, and the flow does not trust it.
    stranger = signer_for(KeyRing.from_text(generate_payload_key()))
    monkeypatch.setenv(PUBLIC_KEY_ENV, stranger.public_key())
    order = f"s-{uuid.uuid4().hex[:8]}"
    flow = asyncio.create_task(refund_flow(order, 61))
    task = await task_for(aw_server, order, 61)
    await paused(task)
    done = await act(aw_server, task["id"], "complete", {"response": {"approved": True}})
    assert done.status_code == 200, done.text
    with pytest.raises(ReceiptInvalidError) as refused:
        await asyncio.wait_for(flow, 30)
    assert (refused.value.reason, refused.value.task_id) == ("unknown_key", task["id"])
    run = await run_of(task)
    assert run.state is not None
    assert run.state.type == StateType.FAILED


async def test_a_run_input_nobody_signed_is_refused(
    aw_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))
    # What a relay sends, but made up: the task is still open on the server.
    forged = {
        "status": "completed",
        "response": {"approved": True, "note": "forged"},
        "answered_in": "awaithumans",
    }
    flow, task = await resumed_with(aw_server, f"f-{uuid.uuid4().hex[:8]}", 62, forged)
    with pytest.raises(ReceiptInvalidError) as refused:
        await asyncio.wait_for(flow, 30)
    assert (refused.value.reason, refused.value.task_id) == ("missing", task["id"])
    assert "not completed on the server" in refused.value.message
    async with api(aw_server) as http:
        stored = (await http.get(f"/api/tasks/{task['id']}")).json()
    assert stored["status"] != "completed"
    assert stored["receipt"] is None


async def test_an_answer_given_in_prefect_is_signed_and_passes(
    aw_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))
    # What Prefect's UI sends: the flow records the answer on the task, which signs it.
    given = {"response": {"approved": False}}
    flow, task = await resumed_with(aw_server, f"u-{uuid.uuid4().hex[:8]}", 63, given)
    assert await asyncio.wait_for(flow, 30) == {
        "outcome": "answered",
        "approved": False,
        "note": "",
    }
    async with api(aw_server) as http:
        stored = (await http.get(f"/api/tasks/{task['id']}")).json()
    assert stored["status"] == "completed"
    assert stored["receipt"]["task_id"] == task["id"]


async def test_the_typed_answer_must_be_the_signed_one(
    aw_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step the flow runs on a run input: Prefect's typed input fills in defaults, so the
    run's answer is compared as a value with the signed one, whose JSON the receipt hashes."""
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))
    body = Ask(
        task="Typed answer?",
        payload_schema=Refund,
        payload=Refund(order_id=f"t-{uuid.uuid4().hex[:8]}", amount=64),
        response_schema=Approval,
        timeout_seconds=600,
    ).request()
    check = receipt_check(body)
    assert check is not None

    def given(response: dict[str, Any]) -> PollResponse:
        return PollResponse(status=TaskStatus.COMPLETED, response=response)

    async with TaskClient(aw_server.url, aw_server.admin_token) as client:
        view, _ = await client.create_task(body, deadline=time.monotonic() + 15)
        done = await act(aw_server, view.id, "complete", {"response": {"approved": True}})
        assert done.status_code == 200, done.text
        # The same value with its default written out: the signed answer, passes.
        await check_answer(
            check, client, view.id, given({"approved": True, "note": ""}), typed=Approval
        )
        # Another value: refused.
        with pytest.raises(ReceiptInvalidError) as refused:
            await check_answer(check, client, view.id, given({"approved": False}), typed=Approval)
        assert (refused.value.reason, refused.value.task_id) == ("mismatch", view.id)
        # Where the answer keeps its JSON (no typed input), the JSON is what is signed.
        with pytest.raises(ReceiptInvalidError) as refused:
            await check_answer(check, client, view.id, given({"approved": True, "note": ""}))
        assert refused.value.reason == "mismatch"
        await check_answer(check, client, view.id, given({"approved": True}))
