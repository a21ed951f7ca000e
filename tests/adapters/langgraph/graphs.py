"""Graphs under test: a refund approval, and a fan-out of approvals through ``Send``."""

from __future__ import annotations

import operator
from collections import Counter
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send
from pydantic import BaseModel

from awaithumans.adapters.langgraph import await_human, await_human_sync
from awaithumans.core import TaskCancelledError

# How often each thread's approval node ran: proves LangGraph re-executed it on resume.
RUNS: Counter[str] = Counter()


class Refund(BaseModel):
    order_id: str
    amount: int


class Approval(BaseModel):
    approved: bool
    note: str = ""


class RefundState(TypedDict, total=False):
    order_id: str
    amount: int
    callback_url: str
    approved: bool
    note: str
    paid: bool


async def approve(state: RefundState) -> dict[str, Any]:
    RUNS[state["order_id"]] += 1
    answer = await await_human(
        task=f"Refund {state['amount']} for order {state['order_id']}?",
        payload_schema=Refund,
        payload={"order_id": state["order_id"], "amount": state["amount"]},
        response_schema=Approval,
        timeout_seconds=600,
        task_metadata={"app": "refunds"},
        callback_url=state["callback_url"],
    )
    assert isinstance(answer, Approval)  # typed, not a dict
    return {"approved": answer.approved, "note": answer.note}


async def pay(state: RefundState) -> dict[str, Any]:
    return {"paid": state["approved"]}


def one_node_graph(
    state: type[Any], node: Any, checkpointer: BaseCheckpointSaver[Any]
) -> CompiledStateGraph[Any]:
    """START -> ``node`` (named "ask") -> END: the graph of a test about one ask."""
    builder = StateGraph(state)
    builder.add_node("ask", node)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=checkpointer)


def refund_graph(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    builder = StateGraph(RefundState)
    builder.add_node("approve", approve)
    builder.add_node("pay", pay)
    builder.add_edge(START, "approve")
    builder.add_edge("approve", "pay")
    builder.add_edge("pay", END)
    return builder.compile(checkpointer=checkpointer)


class BatchState(TypedDict, total=False):
    orders: list[str]
    callback_url: str
    results: Annotated[list[tuple[str, bool, str]], operator.add]


class ItemState(TypedDict):
    order_id: str
    callback_url: str


def fan_out(state: BatchState) -> list[Send]:
    return [
        Send("ask", {"order_id": o, "callback_url": state["callback_url"]}) for o in state["orders"]
    ]


def ask(state: ItemState) -> dict[str, Any]:
    # A sync node: exercises the blocking ``await_human_sync`` in LangGraph's executor threads.
    RUNS[state["order_id"]] += 1
    try:
        answer = await_human_sync(
            task=f"Refund order {state['order_id']}?",
            payload_schema=Refund,
            payload={"order_id": state["order_id"], "amount": 10},
            response_schema=Approval,
            timeout_seconds=600,
            callback_url=state["callback_url"],
        )
    except TaskCancelledError:
        # A branch's own outcome: the superstep goes on, the other branches keep theirs.
        return {"results": [(state["order_id"], False, "cancelled")]}
    return {"results": [(state["order_id"], answer.approved, answer.note)]}


def batch_graph(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    builder = StateGraph(BatchState)
    builder.add_node("ask", ask)
    builder.add_conditional_edges(START, fan_out, ["ask"])
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=checkpointer)


class TwoStepState(TypedDict, total=False):
    order_id: str
    callback_url: str
    answers: list[bool]


async def two_approvals(state: TwoStepState) -> dict[str, Any]:
    # Two asks in one node: the second gets its own task (call index 1) and interrupt id.
    RUNS[state["order_id"]] += 1
    answers = []
    for who in ("manager", "finance"):
        answer = await await_human(
            task=f"{who}: refund order {state['order_id']}?",
            payload_schema=Refund,
            payload={"order_id": state["order_id"], "amount": 99},
            response_schema=Approval,
            timeout_seconds=600,
            callback_url=state["callback_url"],
            redact_payload=who == "finance",
        )
        answers.append(answer.approved)
    return {"answers": answers}


def two_step_graph(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    builder = StateGraph(TwoStepState)
    builder.add_node("two_approvals", two_approvals)
    builder.add_edge(START, "two_approvals")
    builder.add_edge("two_approvals", END)
    return builder.compile(checkpointer=checkpointer)
