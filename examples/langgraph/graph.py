"""A refund agent as a LangGraph graph: look the order up, ask a person, then pay or not.

The ``approve`` node calls ``await_human``. Its first run creates the review task and
interrupts the graph; the thread then lives only in the checkpoint file. When the reviewer
answers, the server's webhook reaches ``relay.py``, which re-runs ``approve`` (it now
returns the typed answer) and the graph goes on to ``refund``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, Field

from awaithumans.adapters.langgraph import await_human

# Both processes must open the same checkpoint file; under .awaithumans/ (ignored by git),
# next to the dev server's own database.
CHECKPOINT_DB = os.environ.get("CHECKPOINT_DB", ".awaithumans/langgraph-refunds.db")
Path(CHECKPOINT_DB).parent.mkdir(parents=True, exist_ok=True)
# Where the server sends the signed webhook: relay.py. run.py puts it in the thread's
# state, so the node, re-run by the relay, asks with exactly the same request.
RELAY_URL = os.environ.get("RELAY_URL", "http://127.0.0.1:8765/")


class RefundRequest(BaseModel):
    order_id: str
    customer: str
    amount_cents: int = Field(description="What the customer gets back, in cents")
    reason: str


class RefundDecision(BaseModel):
    approved: bool = Field(description="Send the money back?")
    notes: str = Field(default="", description="Told to the customer")


class RefundState(TypedDict, total=False):
    order_id: str
    amount_cents: int
    customer: str
    reason: str
    callback_url: str
    approved: bool
    notes: str
    outcome: str


def look_up_order(state: RefundState) -> dict[str, Any]:
    # A real agent would call the shop's API and a model here.
    return {"customer": f"cus_{state['order_id'][-4:]}", "reason": "charged twice"}


async def approve(state: RefundState) -> dict[str, Any]:
    decision = await await_human(
        task=f"Refund {state['amount_cents'] / 100:.2f} USD for order {state['order_id']}?",
        payload_schema=RefundRequest,
        payload=RefundRequest(
            order_id=state["order_id"],
            customer=state["customer"],
            amount_cents=state["amount_cents"],
            reason=state["reason"],
        ),
        response_schema=RefundDecision,
        timeout_seconds=24 * 3600,
        callback_url=state["callback_url"],
    )
    return {"approved": decision.approved, "notes": decision.notes}


def refund(state: RefundState) -> dict[str, Any]:
    if state["approved"]:
        outcome = f"refunded {state['amount_cents']} cents to {state['customer']}"
    else:
        outcome = "refund declined"
    return {"outcome": f"{outcome}: {state['notes']}".rstrip(": ")}


def build(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    builder = StateGraph(RefundState)
    builder.add_node("look_up_order", look_up_order)
    builder.add_node("approve", approve)
    builder.add_node("refund", refund)
    builder.add_edge(START, "look_up_order")
    builder.add_edge("look_up_order", "approve")
    builder.add_edge("approve", "refund")
    builder.add_edge("refund", END)
    return builder.compile(checkpointer=checkpointer)


def thread_config(order_id: str) -> Any:
    # One thread per order: running run.py twice for an order shows the same task.
    return {"configurable": {"thread_id": f"refund-{order_id}"}}
