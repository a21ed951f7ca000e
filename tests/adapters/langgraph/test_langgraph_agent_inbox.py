"""LangGraph asks in the Agent Inbox's shape: LangChain's inbox shows the interrupt and its
answer resumes the node (recorded on the awaithumans task); the awaithumans relay's resume
after an answer in the dashboard gives the same typed decision.

A real awaithumans server, a SQLite checkpointer, the Agent Inbox's resume values as that UI
sends them (``[{"type": ..., "args": ...}]``).
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
from awaithumans.core._errors import InvalidResumeError
from awaithumans.testing import ServerProcess
from tests.adapters.langgraph.conftest import serve_resumer
from tests.adapters.langgraph.graphs import Refund, one_node_graph
from tests.adapters.langgraph.test_langgraph_adapter import config


class InboxState(TypedDict, total=False):
    order_id: str
    callback_url: str
    decision: dict[str, Any]


async def ask(state: InboxState) -> dict[str, Any]:
    decision = await await_human(
        task=f"Send the refund for {state['order_id']}?",
        payload_schema=Refund,
        payload={"order_id": state["order_id"], "amount": 30},
        response_schema=InboxDecision,
        timeout_seconds=600,
        callback_url=state.get("callback_url"),
        agent_inbox=AgentInbox(action="send_refund", allow_ignore=False),
    )
    assert isinstance(decision, InboxDecision)
    return {"decision": decision.model_dump()}


def graph_of(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    return one_node_graph(InboxState, ask, checkpointer)


async def task_of(server: ServerProcess, task_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as http:
        got = await http.get(f"/api/tasks/{task_id}")
    assert got.status_code == 200, got.text
    return dict(got.json())


async def interrupted(graph: CompiledStateGraph[Any], thread: str) -> dict[str, Any]:
    first = await graph.ainvoke({"order_id": thread}, config(thread))
    (request,) = first["__interrupt__"][0].value
    return dict(request)


async def test_the_interrupt_is_an_inbox_request_carrying_the_task(
    aw_server: ServerProcess, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    thread = f"t-{uuid.uuid4().hex[:8]}"
    request = await interrupted(graph_of(sqlite_checkpointer), thread)
    assert request["action_request"] == {
        "action": "send_refund",
        "args": {"order_id": thread, "amount": 30},
    }
    assert request["config"] == {
        "allow_accept": True,
        "allow_edit": True,
        "allow_respond": True,
        "allow_ignore": False,
    }
    info = request[INTERRUPT_KEY]
    assert request["description"].startswith(f"Send the refund for {thread}?")
    assert info["review_url"] in request["description"]
    assert (await task_of(aw_server, info["task_id"]))["status"] == "created"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"type": "accept", "args": None}, {"type": "accept", "args": "PROPOSED"}),
        (
            {"type": "edit", "args": {"action": "send_refund", "args": {"amount": 20}}},
            {"type": "edit", "args": {"amount": 20}},
        ),
        ({"type": "response", "args": "Ask for the receipt first."}, None),
    ],
)
async def test_an_inbox_answer_resumes_the_node_and_is_recorded(
    aw_server: ServerProcess,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    answer: dict[str, Any],
    expected: dict[str, Any] | None,
) -> None:
    thread = f"t-{uuid.uuid4().hex[:8]}"
    graph = graph_of(sqlite_checkpointer)
    request = await interrupted(graph, thread)
    task_id = request[INTERRUPT_KEY]["task_id"]
    done = await graph.ainvoke(Command(resume=[answer]), config(thread))
    if expected is None:
        expected = {"type": "response", "response": "Ask for the receipt first."}
    if expected.get("args") == "PROPOSED":
        expected["args"] = {"order_id": thread, "amount": 30}
    decision = {"args": None, "response": None, **expected}
    assert done["decision"] == decision
    task = await task_of(aw_server, task_id)
    # The admin token may answer: the decision is on the task as a completed answer.
    assert (task["status"], task["response"]) == ("completed", decision)


async def test_an_answer_the_config_does_not_allow_is_refused(
    aw_server: ServerProcess, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    thread = f"t-{uuid.uuid4().hex[:8]}"
    graph = graph_of(sqlite_checkpointer)
    request = await interrupted(graph, thread)
    with pytest.raises(InvalidResumeError) as refused:
        await graph.ainvoke(Command(resume=[{"type": "ignore", "args": None}]), config(thread))
    assert refused.value.code == "RESUME_NOT_ALLOWED"
    task = await task_of(aw_server, request[INTERRUPT_KEY]["task_id"])
    assert task["status"] == "created"  # nothing recorded


async def test_an_agent_key_closes_the_task_saying_where_it_was_answered(
    aw_server: ServerProcess,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with httpx.AsyncClient(
        base_url=aw_server.url, headers={"Authorization": f"Bearer {aw_server.admin_token}"}
    ) as http:
        made = await http.post("/api/admin/agent-keys", json={"name": "inbox agent"})
    assert made.status_code == 201, made.text
    monkeypatch.setenv("AWAITHUMANS_API_KEY", made.json()["key"])
    thread = f"t-{uuid.uuid4().hex[:8]}"
    graph = graph_of(sqlite_checkpointer)
    request = await interrupted(graph, thread)
    done = await graph.ainvoke(Command(resume=[{"type": "accept", "args": None}]), config(thread))
    assert done["decision"]["type"] == "accept"
    task = await task_of(aw_server, request[INTERRUPT_KEY]["task_id"])
    assert task["status"] == "cancelled"
    audit = await _audit(aw_server, task["id"])
    assert audit[-1]["detail"]["reason"] == "answered in the Agent Inbox"


async def _audit(server: ServerProcess, task_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as http:
        got = await http.get(f"/api/tasks/{task_id}/audit")
    assert got.status_code == 200, got.text
    return list(got.json())


async def test_an_answer_in_awaithumans_reaches_the_node_through_the_relay(
    aw_server: ServerProcess, secret: str, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    thread = f"t-{uuid.uuid4().hex[:8]}"
    graph = graph_of(sqlite_checkpointer)
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke(
            {"order_id": thread, "callback_url": resumer.url}, config(thread)
        )
        (request,) = first["__interrupt__"][0].value
        async with httpx.AsyncClient(
            base_url=aw_server.url, headers={"Authorization": f"Bearer {aw_server.admin_token}"}
        ) as http:
            answered = await http.post(
                f"/api/tasks/{request[INTERRUPT_KEY]['task_id']}/complete",
                json={"response": {"type": "response", "response": "Call the customer."}},
            )
        assert answered.status_code == 200, answered.text
        call = await resumer.next()
        assert call.status == 200, call.reply
    values = (await graph.aget_state(config(thread))).values
    assert values["decision"] == {
        "type": "response",
        "args": None,
        "response": "Call the customer.",
    }
