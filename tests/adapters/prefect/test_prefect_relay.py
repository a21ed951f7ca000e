"""The relay's answers, each of which tells the server's delivery queue what to do next."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from prefect import flow
from prefect.client.orchestration import get_client
from standardwebhooks.webhooks import Webhook

from awaithumans.adapters.prefect import relay_app
from awaithumans.testing import ServerProcess
from tests.adapters.prefect.flows import refund_flow
from tests.adapters.prefect.test_prefect_pause import act, paused, task_for

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def signed(data: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "task.completed", "timestamp": "x", "data": data})
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "content-type": "application/json",
    }
    return body.encode(), headers


async def post(data: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    body, headers = signed(data, secret)
    transport = httpx.ASGITransport(app=relay_app(get_client, SECRET))
    async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
        return await http.post("/hook", content=body, headers=headers)


def event(
    run_id: Any, pause_key: str, response: Any, task_id: str = "tsk_" + "1" * 24
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "status": "completed",
        "response": response,
        "verification_attempt": 0,
        "task_metadata": {"prefect": {"flow_run_id": str(run_id), "pause_key": pause_key}},
    }


@flow
def never_runs() -> None:
    """Only registered: its runs stay scheduled, never paused."""


async def test_bad_signature_and_foreign_events() -> None:
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert (await post(event(uuid.uuid4(), "k", {}), secret=other)).status_code == 401
    no_run = await post({"task_id": "tsk_1", "status": "completed", "task_metadata": {}})
    assert no_run.status_code == 400
    assert no_run.json()["error"] == "NOT_OUR_EVENT"
    assert "task_metadata.prefect" in no_run.json()["message"]
    not_final = event(uuid.uuid4(), "k", None) | {"status": "assigned"}
    assert (await post(not_final)).status_code == 400


async def test_run_not_paused_yet_asks_for_a_retry() -> None:
    # The human answered before the flow reached its pause: 503, the server tries again.
    async with get_client() as prefect:
        run = await prefect.create_flow_run(never_runs)
    resp = await post(event(run.id, "awaithumans-0", {"approved": True}))
    assert resp.status_code == 503
    assert resp.json()["error"] == "RUN_NOT_PAUSED_YET"


async def test_input_prefect_refuses_is_final_and_changes_nothing(
    aw_server: ServerProcess,
) -> None:
    order = f"x-{uuid.uuid4().hex[:8]}"
    flow_run = asyncio.create_task(refund_flow(order, 46))
    task = await task_for(aw_server, order, 46)
    run = await paused(task)
    wrong_pause = await post(event(run.id, "awaithumans-7", {"approved": True}, task["id"]))
    # Paused, but at another ask: this event is not its answer; retry (maybe it comes).
    assert wrong_pause.status_code == 503
    assert wrong_pause.json()["error"] == "RUN_NOT_PAUSED_YET"
    bad = await post(event(run.id, "awaithumans-0", {"approved": "maybe"}, task["id"]))
    assert bad.status_code == 410  # never retried: the same input will never fit
    assert bad.json()["outcome"] == "refused"
    assert bad.json()["reason"].startswith("the input was rejected")
    assert (await paused(task)).id == run.id
    await act(aw_server, task["id"], "complete", {"response": {"approved": True}})
    assert (await asyncio.wait_for(flow_run, 30))["approved"] is True
    # Now a late duplicate: the run went past that pause.
    late = await post(event(run.id, "awaithumans-0", {"approved": False}, task["id"]))
    assert late.status_code == 200
    assert late.json() == {
        "resumed": False,
        "outcome": "not_waiting",
        "reason": "the flow run has ended",
    }
