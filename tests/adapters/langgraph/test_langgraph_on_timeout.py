"""LangGraph with ``on_timeout=``: the server's timeout resumes the node with the default.

A real awaithumans server (its scheduler looks every 0.2 s), the relay served on the test's
loop, a SQLite checkpointer; the deadline is moved into the past in the server's database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from awaithumans import is_default
from awaithumans.adapters.langgraph import INTERRUPT_KEY, await_human, await_human_sync
from awaithumans.testing import ServerProcess
from tests.adapters._tasks import expire_now
from tests.adapters.langgraph.conftest import serve_resumer
from tests.adapters.langgraph.graphs import Approval, Refund, one_node_graph
from tests.adapters.langgraph.test_langgraph_adapter import act, config

REFUSE = Approval(approved=False, note="no answer in time")


@pytest.fixture(scope="module")
def aw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Overrides the package's server: its database file is reachable (``server.db``) and
    its scheduler looks for expired tasks every 0.2 s."""
    env = {
        "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
        "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.2",
    }
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw-default"), env=env) as proc:
        yield proc


class AskState(TypedDict, total=False):
    order_id: str
    callback_url: str
    approved: bool
    note: str
    by_default: bool


def _ask(state: AskState) -> dict[str, Any]:
    return {
        "task": f"Refund order {state['order_id']}?",
        "payload_schema": Refund,
        "payload": {"order_id": state["order_id"], "amount": 1},
        "response_schema": Approval,
        "timeout_seconds": 600,
        "callback_url": state["callback_url"],
        "on_timeout": REFUSE,
    }


async def ask_async(state: AskState) -> dict[str, Any]:
    answer = await await_human(**_ask(state))
    return {"approved": answer.approved, "note": answer.note, "by_default": is_default(answer)}


def ask_sync(state: AskState) -> dict[str, Any]:
    answer = await_human_sync(**_ask(state))
    return {"approved": answer.approved, "note": answer.note, "by_default": is_default(answer)}


def graph_of(node: Any, checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    return one_node_graph(AskState, node, checkpointer)


@pytest.mark.parametrize("node", [ask_async, ask_sync], ids=["async", "sync"])
async def test_server_timeout_resumes_the_node_with_the_default(
    node: Any,
    aw_server: ServerProcess,
    secret: str,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
) -> None:
    graph = graph_of(node, sqlite_checkpointer)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke(
            {"order_id": f"d-{uuid.uuid4().hex[:8]}", "callback_url": resumer.url},
            config(thread),
        )
        task_id = first["__interrupt__"][0].value[INTERRUPT_KEY]["task_id"]
        expire_now(aw_server, task_id)
        call = await resumer.next()
        assert (call.status, call.reply) == (200, {"resumed": True, "outcome": "resumed"})
        data = json.loads(call.body)["data"]
        assert (data["status"], data["response"], data["default_applied"]) == (
            "timed_out",
            REFUSE.model_dump(),
            True,
        )
    state = await graph.aget_state(config(thread))
    assert state.next == ()
    assert state.values["approved"] is False
    assert state.values["note"] == "no answer in time"
    assert state.values["by_default"] is True


async def test_an_answer_before_the_deadline_is_not_the_default(
    aw_server: ServerProcess, secret: str, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    graph = graph_of(ask_async, sqlite_checkpointer)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke(
            {"order_id": f"a-{uuid.uuid4().hex[:8]}", "callback_url": resumer.url},
            config(thread),
        )
        task_id = first["__interrupt__"][0].value[INTERRUPT_KEY]["task_id"]
        await act(aw_server, task_id, "complete", {"response": {"approved": False}})
        call = await resumer.next()
        assert call.status == 200
        assert json.loads(call.body)["data"]["default_applied"] is False
    values = (await graph.aget_state(config(thread))).values
    assert (values["approved"], values["note"], values["by_default"]) == (False, "", False)
