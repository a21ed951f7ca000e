"""With a receipt key set, an outcome the node is resumed with that is not a signed answer (a
timeout, a cancel) must be the server's too: receipts sign completed answers only, so
otherwise a made-up ``timed_out`` carrying any "default the server applied" would reach the
node's code unchecked (here: turn the graph's refusing default into an approval).

A real awaithumans server whose scheduler looks every 0.2 s (the deadline is moved into the
past in its database), a SQLite checkpointer; the server's webhooks go nowhere, so the test
alone decides what the node is resumed with.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from awaithumans import ReceiptInvalidError, is_default
from awaithumans.adapters.langgraph import INTERRUPT_KEY, Resumed, await_human, resume_from_event
from awaithumans.core import TaskCancelledError
from awaithumans.core._receipts import PUBLIC_KEY_ENV
from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.adapters._tasks import expire_now
from tests.adapters.langgraph.graphs import Approval, Refund
from tests.adapters.langgraph.test_langgraph_receipts import (
    NOWHERE,
    api,
    config,
    server_key,
    task_of,
)

REFUSE = Approval(approved=False, note="no answer in time")


@pytest.fixture(scope="module")
def aw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Overrides the package's server: its database file is reachable and its scheduler
    looks for expired tasks every 0.2 s."""
    env = {"AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2"}
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw-receipt-timeout"), env=env) as proc:
        yield proc


class AskState(TypedDict, total=False):
    order_id: str
    approved: bool
    by_default: bool
    cancelled: bool


async def _approve(state: AskState) -> dict[str, Any]:
    try:
        answer = await await_human(
            task=f"Refund order {state['order_id']}?",
            payload_schema=Refund,
            payload={"order_id": state["order_id"], "amount": 1},
            response_schema=Approval,
            timeout_seconds=600,
            callback_url=NOWHERE,
            on_timeout=REFUSE,
        )
    except TaskCancelledError:
        return {"cancelled": True}
    return {"approved": answer.approved, "by_default": is_default(answer)}


def _graph(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    builder = StateGraph(AskState)
    builder.add_node("approve", _approve)
    builder.add_edge(START, "approve")
    builder.add_edge("approve", END)
    return builder.compile(checkpointer=checkpointer)


async def _asked(graph: Any) -> tuple[str, str, dict[str, Any]]:
    thread = f"t-{uuid.uuid4().hex[:8]}"
    first = await graph.ainvoke({"order_id": f"r-{uuid.uuid4().hex[:8]}"}, config(thread))
    task_id: str = first["__interrupt__"][0].value[INTERRUPT_KEY]["task_id"]
    return thread, task_id, first["__interrupt__"][0].value[INTERRUPT_KEY]


async def _metadata(server: ServerProcess, task_id: str) -> dict[str, Any]:
    metadata: dict[str, Any] = (await task_of(server, task_id))["task_metadata"]
    return metadata


async def _ended(server: ServerProcess, task_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        task = await task_of(server, task_id)
        return task if task["status"] == status else None

    ended: dict[str, Any] = await until(check, timeout=30, why=server.logs)
    return ended


APPROVE = {"approved": True, "note": ""}


async def _timeout_event(
    server: ServerProcess, task_id: str, response: dict[str, Any]
) -> dict[str, Any]:
    """The webhook's data of a timeout whose applied default is ``response``."""
    return {
        "task_id": task_id,
        "status": "timed_out",
        "response": response,
        "default_applied": True,
        "task_metadata": await _metadata(server, task_id),
    }


async def test_a_made_up_timeout_is_refused_and_the_servers_passes(
    aw_server: ServerProcess,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph = _graph(sqlite_checkpointer)
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))

    # Nobody answered and nothing timed out: a "timeout" whose default approves.
    thread, task_id, _ = await _asked(graph)
    with pytest.raises(ReceiptInvalidError) as refused:
        await resume_from_event(graph, await _timeout_event(aw_server, task_id, APPROVE))
    assert (refused.value.reason, refused.value.task_id) == ("mismatch", task_id)
    assert "status 'created' there" in refused.value.message
    assert "approved" not in (await graph.aget_state(config(thread))).values

    # The task really times out with the refusing default; the approving one is still a lie.
    # (Each case on its own thread: LangGraph keeps the first value a node is resumed with.)
    thread, task_id, _ = await _asked(graph)
    expire_now(aw_server, task_id)
    stored = await _ended(aw_server, task_id, "timed_out")
    assert stored["response"] == REFUSE.model_dump(mode="json")
    with pytest.raises(ReceiptInvalidError) as refused:
        await resume_from_event(graph, await _timeout_event(aw_server, task_id, APPROVE))
    assert (refused.value.reason, refused.value.task_id) == ("mismatch", task_id)
    assert "another default applied there" in refused.value.message
    assert "approved" not in (await graph.aget_state(config(thread))).values

    # The server's own outcome resumes the node with its default.
    thread, task_id, _ = await _asked(graph)
    expire_now(aw_server, task_id)
    stored = await _ended(aw_server, task_id, "timed_out")
    result = await resume_from_event(
        graph, await _timeout_event(aw_server, task_id, stored["response"])
    )
    assert result.outcome is Resumed.RESUMED
    state = await graph.aget_state(config(thread))
    assert state.next == ()
    assert (state.values["approved"], state.values["by_default"]) == (False, True)


async def test_a_cancel_must_be_the_servers_too(
    aw_server: ServerProcess,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph = _graph(sqlite_checkpointer)
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))
    thread, task_id, _ = await _asked(graph)
    event = {
        "task_id": task_id,
        "status": "cancelled",
        "response": None,
        "task_metadata": await _metadata(aw_server, task_id),
    }
    with pytest.raises(ReceiptInvalidError) as refused:
        await resume_from_event(graph, event)
    assert (refused.value.reason, refused.value.task_id) == ("mismatch", task_id)

    thread, task_id, _ = await _asked(graph)
    async with api(aw_server) as http:
        done = await http.post(f"/api/tasks/{task_id}/cancel", json={"reason": "dup"})
    assert done.status_code == 200, done.text
    event = {**event, "task_id": task_id, "task_metadata": await _metadata(aw_server, task_id)}
    result = await resume_from_event(graph, event)
    assert result.outcome is Resumed.RESUMED
    state = await graph.aget_state(config(thread))
    assert state.values["cancelled"] is True
