"""An Agent Inbox answer to a task that names its approvers fails closed.

The inbox does not say who answered, so an answer given there cannot stand for an
approver's: with an agent key (which may not answer) the node raises instead of closing the
task and going on, and with an operator's credential on an approvers-only task the server's
``NOT_AN_APPROVER`` is raised. Either way the task stays open for the people it names.
"""

from __future__ import annotations

import uuid
from typing import Any, TypedDict

import httpx
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from awaithumans.adapters.langgraph import INTERRUPT_KEY, AgentInbox, InboxDecision, await_human
from awaithumans.core._errors import PermissionDeniedError
from awaithumans.testing import ServerProcess
from tests.adapters.langgraph.graphs import Refund, one_node_graph
from tests.adapters.langgraph.test_langgraph_adapter import config
from tests.adapters.langgraph.test_langgraph_agent_inbox import task_of


class State(TypedDict, total=False):
    order_id: str
    operators_may_answer: bool
    decision: dict[str, Any]


async def ask(state: State) -> dict[str, Any]:
    decision = await await_human(
        task=f"Send the refund for {state['order_id']}?",
        payload_schema=Refund,
        payload={"order_id": state["order_id"], "amount": 3000},
        response_schema=InboxDecision,
        timeout_seconds=600,
        approvers=["cfo@acme.test"],
        operators_may_answer=state["operators_may_answer"],
        agent_inbox=AgentInbox(action="send_refund"),
    )
    return {"decision": decision.model_dump()}


def graph_of(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    return one_node_graph(State, ask, checkpointer)


async def agent_key(server: ServerProcess) -> str:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as http:
        made = await http.post("/api/admin/agent-keys", json={"name": "inbox agent"})
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


@pytest.mark.parametrize(
    ("credential", "operators_may_answer", "code"),
    [("agent key", True, "FORBIDDEN"), ("admin token", False, "NOT_AN_APPROVER")],
)
async def test_an_inbox_answer_does_not_stand_for_an_approver(
    aw_server: ServerProcess,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    monkeypatch: pytest.MonkeyPatch,
    credential: str,
    operators_may_answer: bool,
    code: str,
) -> None:
    if credential == "agent key":
        monkeypatch.setenv("AWAITHUMANS_API_KEY", await agent_key(aw_server))
    thread = f"t-{uuid.uuid4().hex[:8]}"
    graph = graph_of(sqlite_checkpointer)
    first = await graph.ainvoke(
        {"order_id": thread, "operators_may_answer": operators_may_answer}, config(thread)
    )
    (request,) = first["__interrupt__"][0].value
    task_id = request[INTERRUPT_KEY]["task_id"]
    with pytest.raises(PermissionDeniedError) as refused:
        await graph.ainvoke(Command(resume=[{"type": "accept", "args": None}]), config(thread))
    assert refused.value.code == code
    task = await task_of(aw_server, task_id)
    assert (task["status"], task["response"]) == ("created", None)
