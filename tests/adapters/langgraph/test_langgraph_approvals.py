"""LangGraph with ``approvals_required=2``: the resumed node gets the deciding answer and
every approver's vote (``awaithumans.approvals_of``), from the server's webhook.

A real awaithumans server, the relay served on the test's loop, a SQLite checkpointer; two
directory users vote through the API as they would from the dashboard.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, TypedDict

import httpx
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from awaithumans import approvals_of
from awaithumans.adapters.langgraph import INTERRUPT_KEY, await_human
from awaithumans.testing import ServerProcess
from tests._api import add_user
from tests.adapters.langgraph.conftest import serve_resumer
from tests.adapters.langgraph.graphs import Approval, Refund, one_node_graph
from tests.adapters.langgraph.test_langgraph_adapter import config

PASSWORD = "correct horse battery staple"


class VoteState(TypedDict, total=False):
    order_id: str
    callback_url: str
    approved: bool
    voters: list[str]


async def ask(state: VoteState) -> dict[str, Any]:
    answer = await await_human(
        task=f"Refund order {state['order_id']}?",
        payload_schema=Refund,
        payload={"order_id": state["order_id"], "amount": 5},
        response_schema=Approval,
        timeout_seconds=600,
        callback_url=state["callback_url"],
        approvers=[f"alice-{state['order_id']}@acme.com", f"bob-{state['order_id']}@acme.com"],
        approvals_required=2,
    )
    return {
        "approved": answer.approved,
        "voters": [f"{v.email}:{v.approved}" for v in approvals_of(answer)],
    }


def graph_of(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    return one_node_graph(VoteState, ask, checkpointer)


async def vote(server: ServerProcess, email: str, task_id: str, approved: bool) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        got = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert got.status_code == 200, got.text
        done = await http.post(
            f"/api/tasks/{task_id}/complete", json={"response": {"approved": approved}}
        )
        assert done.status_code == 200, done.text


async def test_the_resumed_node_gets_every_vote(
    aw_server: ServerProcess, secret: str, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    order = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{order}@acme.com", f"bob-{order}@acme.com"
    await add_user(aw_server, "Alice", email=alice)
    await add_user(aw_server, "Bob", email=bob)
    graph = graph_of(sqlite_checkpointer)
    thread = f"t-{order}"
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke(
            {"order_id": order, "callback_url": resumer.url}, config(thread)
        )
        task_id = first["__interrupt__"][0].value[INTERRUPT_KEY]["task_id"]
        await vote(aw_server, alice, task_id, True)
        await vote(aw_server, bob, task_id, True)
        call = await resumer.next()
        assert (call.status, call.reply) == (200, {"resumed": True, "outcome": "resumed"})
        data = json.loads(call.body)["data"]
        assert data["status"] == "completed"
        assert [(a["email"], a["approved"]) for a in data["approvals"]] == [
            (alice, True),
            (bob, True),
        ]
    values = (await graph.aget_state(config(thread))).values
    assert values["approved"] is True
    assert values["voters"] == [f"{alice}:True", f"{bob}:True"]
