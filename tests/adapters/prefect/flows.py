"""Flows under test. Importable by path too: the served deployment loads them by entrypoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow
from pydantic import BaseModel

from awaithumans.adapters.prefect import await_human, await_human_sync
from awaithumans.core import TaskCancelledError, TaskTimeoutError


class Refund(BaseModel):
    order_id: str
    amount: int


class Approval(BaseModel):
    approved: bool
    note: str = ""


def _ask(order_id: str, amount: int) -> dict[str, Any]:
    return {
        "task": f"Refund {amount} for order {order_id}?",
        "payload_schema": Refund,
        "payload": Refund(order_id=order_id, amount=amount),
        "response_schema": Approval,
        "timeout_seconds": 600,
    }


@flow
async def refund_flow(order_id: str, amount: int, poll_interval: float = 0.2) -> dict[str, Any]:
    try:
        answer = await await_human(**_ask(order_id, amount), poll_interval=poll_interval)
    except (TaskCancelledError, TaskTimeoutError) as exc:
        return {"outcome": exc.code, "task_id": exc.task_id}
    assert isinstance(answer, Approval)  # typed, not a dict
    return {"outcome": "answered", "approved": answer.approved, "note": answer.note}


@flow
def refund_flow_sync(order_id: str, amount: int) -> dict[str, Any]:
    # Two asks in a row in a sync flow: each gets its own task and pause key.
    first = await_human_sync(**_ask(order_id, amount), poll_interval=0.2)
    second = await_human_sync(**_ask(order_id, amount * 2), poll_interval=0.2)
    return {"first": first.approved, "second": second.approved}


@flow
def refund_suspend(order_id: str, amount: int, out: str, callback_url: str | None = None) -> None:
    """Suspends while the human thinks; the relay's resume runs it again from the top."""
    runs = Path(out).with_suffix(".runs")
    with runs.open("a") as f:
        f.write("run\n")
    try:
        answer = await_human_sync(**_ask(order_id, amount), suspend=True, callback_url=callback_url)
        result: dict[str, Any] = {"outcome": "answered", "approved": answer.approved}
    except (TaskCancelledError, TaskTimeoutError) as exc:
        result = {"outcome": exc.code}
    Path(out).write_text(json.dumps(result))


@flow
async def refund_flow_verified(order_id: str, amount: int) -> dict[str, Any]:
    """The refund flow, with a verifier checking each answer on the server."""
    from awaithumans.verifiers.claude import claude_verifier

    answer = await await_human(
        **_ask(order_id, amount),
        poll_interval=0.2,
        verifier=claude_verifier(instructions="A note is required."),
    )
    return {"outcome": "answered", "approved": answer.approved, "note": answer.note}
