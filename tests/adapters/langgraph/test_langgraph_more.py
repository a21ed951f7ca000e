"""LangGraph adapter, harder cases: another process resumes, an early answer, a timeout,
and resuming a graph deployed on LangGraph Platform through the official SDK."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk import get_client

from awaithumans.adapters.langgraph import (
    INTERRUPT_KEY,
    _node,
    await_human,
    resume_from_event,
)
from awaithumans.adapters.langgraph.platform import resume_on_platform
from awaithumans.core import RetryLaterError, TaskTimeoutError
from awaithumans.core._await import create_task
from awaithumans.core._wire import TaskView
from awaithumans.testing import ServerProcess
from tests.adapters._tasks import expire_now
from tests.adapters.langgraph.conftest import serve_resumer
from tests.adapters.langgraph.graphs import RUNS, Approval, Refund, refund_graph
from tests.adapters.langgraph.test_langgraph_adapter import act, config, tasks_of

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def aw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Overrides the package's server: its database file is reachable (``server.db``), its
    scheduler looks for expired tasks every 0.2 s, and webhook retries are picked up fast."""
    env = {
        "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
        "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.2",
    }
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw-more"), env=env) as proc:
        yield proc


# -- (a) started in one process, resumed in another -----------------------------------

_STARTER = """
import asyncio, json, sys
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from tests.adapters.langgraph.graphs import refund_graph

async def main(db, thread, order, callback):
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        out = await refund_graph(saver).ainvoke(
            {"order_id": order, "amount": 7, "callback_url": callback},
            {"configurable": {"thread_id": thread}},
        )
    print(json.dumps(out["__interrupt__"][0].value))

asyncio.run(main(*sys.argv[1:]))
"""


async def test_graph_started_in_another_process_is_resumed_here(
    aw_server: ServerProcess, secret: str, tmp_path: Path
) -> None:
    db = str(tmp_path / "graph.db")
    thread = f"t-{uuid.uuid4().hex[:8]}"
    order = f"x-{uuid.uuid4().hex[:8]}"
    async with (
        AsyncSqliteSaver.from_conn_string(db) as saver,
        serve_resumer(refund_graph(saver), secret) as resumer,
    ):
        starter = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _STARTER,
            db,
            thread,
            order,
            resumer.url,
            cwd=REPO,
            env=dict(os.environ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(starter.communicate(), 60)
        assert starter.returncode == 0, err.decode()
        info = json.loads(out)[INTERRUPT_KEY]
        # The starter is gone; its interrupt lives only in the checkpoint file.
        state = await refund_graph(saver).aget_state(config(thread))
        assert state.next == ("approve",)
        assert RUNS[order] == 0  # the node never ran in this process

        await act(aw_server, info["task_id"], "complete", {"response": {"approved": True}})
        call = await resumer.next()
        assert (call.status, call.reply) == (200, {"resumed": True, "outcome": "resumed"})
        state = await refund_graph(saver).aget_state(config(thread))
    assert state.next == ()
    assert state.values["paid"] is True
    assert RUNS[order] == 1  # re-executed here, on resume
    assert [t["id"] for t in await tasks_of(aw_server, thread)] == [info["task_id"]]


# -- (b) the human answers before the node has interrupted ----------------------------


async def test_answer_before_the_interrupt_is_retried_not_lost(
    aw_server: ServerProcess,
    secret: str,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph = refund_graph(sqlite_checkpointer)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    order = f"e-{uuid.uuid4().hex[:8]}"
    # The node's own reference to the core's create_task is the one to wrap.
    create = create_task
    early: list[Any] = []

    async with serve_resumer(graph, secret) as resumer:

        async def create_then_answer(*args: Any) -> tuple[TaskView, bool, str]:
            # The task exists, the node has not called interrupt() yet: the human answers
            # now, and the webhook reaches the resumer before the interrupt is checkpointed.
            view, replayed, url = await create(*args)
            if not early:
                body = {"response": {"approved": True, "note": "fast"}}
                await act(aw_server, view.id, "complete", body)
                early.append(await resumer.next())
            return view, replayed, url

        monkeypatch.setattr(_node, "create_task", create_then_answer)
        first = await graph.ainvoke(
            {"order_id": order, "amount": 3, "callback_url": resumer.url}, config(thread)
        )
        assert first["__interrupt__"]  # the node interrupted after the answer came
        (too_early,) = early
        # Not ready: 503, so the server's delivery queue keeps the event and retries ...
        assert too_early.status == 503, too_early.reply
        assert too_early.reply["error"] == "INTERRUPT_NOT_READY"
        assert "has not interrupted" in too_early.reply["message"]
        # ... and the retry, now that the interrupt is checkpointed, resumes the node.
        retry = await resumer.next()
        assert (retry.status, retry.reply) == (200, {"resumed": True, "outcome": "resumed"})
    state = await graph.aget_state(config(thread))
    assert state.next == ()
    assert (state.values["approved"], state.values["note"]) == (True, "fast")
    assert RUNS[order] == 2
    assert len(await tasks_of(aw_server, thread)) == 1


async def test_resumer_reports_not_ready_for_a_node_that_has_not_asked() -> None:
    # The same condition without a server: the event names the node's pending task.
    from langgraph.checkpoint.memory import InMemorySaver

    graph = refund_graph(InMemorySaver())
    thread = f"t-{uuid.uuid4().hex[:8]}"
    await graph.aupdate_state(config(thread), {"order_id": "n", "amount": 1}, as_node="__start__")
    (pending,) = (await graph.aget_state(config(thread))).tasks
    assert pending.name == "approve"
    event = {
        "task_id": "tk-early",
        "status": "completed",
        "response": {"approved": True},
        "task_metadata": {
            "langgraph": {"thread_id": thread, "checkpoint_ns": f"approve:{pending.id}"}
        },
    }
    with pytest.raises(RetryLaterError, match="has not interrupted"):
        await resume_from_event(graph, event)


# -- (c) the server times the task out; the node gets TaskTimeoutError ----------------


class TimeoutState(TypedDict, total=False):
    order_id: str
    callback_url: str
    outcome: str


async def ask_or_escalate(state: TimeoutState) -> dict[str, Any]:
    RUNS[state["order_id"]] += 1
    try:
        answer = await await_human(
            task=f"Refund order {state['order_id']}?",
            payload_schema=Refund,
            payload={"order_id": state["order_id"], "amount": 1},
            response_schema=Approval,
            timeout_seconds=60,
            callback_url=state["callback_url"],
        )
    except TaskTimeoutError as exc:
        return {"outcome": f"timed out: {exc.code} {exc.task_id}"}
    return {"outcome": f"answered: {answer.approved}"}


def timeout_graph(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    builder = StateGraph(TimeoutState)
    builder.add_node("ask", ask_or_escalate)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=checkpointer)


async def test_server_timeout_reaches_the_node_as_task_timeout_error(
    aw_server: ServerProcess, secret: str, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    graph = timeout_graph(sqlite_checkpointer)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    order = f"to-{uuid.uuid4().hex[:8]}"
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke(
            {"order_id": order, "callback_url": resumer.url}, config(thread)
        )
        task_id = first["__interrupt__"][0].value[INTERRUPT_KEY]["task_id"]
        expire_now(aw_server, task_id)
        # The scheduler wakes within 0.2 s, times the task out, and the webhook follows.
        call = await resumer.next()
        assert (call.status, call.reply) == (200, {"resumed": True, "outcome": "resumed"})
        assert json.loads(call.body)["data"]["status"] == "timed_out"
    state = await graph.aget_state(config(thread))
    assert state.next == ()
    assert state.values["outcome"] == f"timed out: TIMEOUT_EXCEEDED {task_id}"
    assert RUNS[order] == 2


# -- LangGraph Platform: the official SDK against a stand-in server -------------------


class PlatformStandIn:
    """Just ``GET /threads/{id}/state`` and ``POST /threads/{id}/runs`` of LangGraph Server,
    on 127.0.0.1; records every request the SDK makes."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                stand_in.requests.append(("GET", path, query))
                parts = path.strip("/").split("/")
                if len(parts) == 3 and parts[0] == "threads" and parts[2] == "state":
                    state = stand_in.states.get(parts[1])
                    if state is None:
                        self._reply(404, {"detail": "Thread not found"})
                    else:
                        self._reply(200, state)
                    return
                self._reply(404, {"detail": "not here"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                stand_in.requests.append(("POST", self.path, body))
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[0] == "threads" and parts[2] == "runs":
                    now = datetime.now(UTC).isoformat()
                    self._reply(
                        200,
                        {
                            "run_id": "run-1",
                            "thread_id": parts[1],
                            "assistant_id": body["assistant_id"],
                            "created_at": now,
                            "updated_at": now,
                            "status": "pending",
                            "metadata": {},
                            "multitask_strategy": "reject",
                        },
                    )
                    return
                self._reply(404, {"detail": "not here"})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> PlatformStandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _platform_state(interrupts: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> Any:
    return {
        "values": {"order_id": "p1"},
        "next": [t["name"] for t in tasks],
        "checkpoint": {"thread_id": "th", "checkpoint_ns": "", "checkpoint_id": "c1"},
        "metadata": {},
        "created_at": None,
        "parent_checkpoint": None,
        "tasks": tasks,
        "interrupts": interrupts,
    }


def _event(task_id: str, thread_id: str, checkpoint_ns: str = "") -> dict[str, Any]:
    return {
        "type": "task.completed",
        "data": {
            "task_id": task_id,
            "status": "completed",
            "response": {"approved": True, "note": "ok"},
            "verification_attempt": 0,
            "completed_by_email": "someone@example.com",
            "task_metadata": {
                "langgraph": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
            },
        },
    }


async def test_platform_resume_sends_the_interrupt_id_and_thread() -> None:
    ours = {"value": {INTERRUPT_KEY: {"task_id": "tk-p"}}, "id": "int-ours"}
    other = {"value": {INTERRUPT_KEY: {"task_id": "tk-other"}}, "id": "int-other"}
    not_ours = {"value": "some other interrupt", "id": "int-3"}
    with PlatformStandIn() as platform:
        platform.states["th-1"] = _platform_state(
            [other, not_ours, ours],
            [{"id": "a", "name": "approve", "error": None, "interrupts": [ours],
              "checkpoint": None, "state": None, "result": None}],
        )  # fmt: skip
        client = get_client(url=platform.url, api_key=None)
        run = await resume_on_platform(
            client, _event("tk-p", "th-1", "approve:a"), assistant_id="refunds"
        )
        assert run is not None
        assert run["run_id"] == "run-1"
        assert platform.requests[0] == ("GET", "/threads/th-1/state", "subgraphs=false")
        method, path, body = platform.requests[1]
        assert (method, path) == ("POST", "/threads/th-1/runs")
        assert body["assistant_id"] == "refunds"
        assert "input" not in body
        # Keyed by the interrupt id; only the fields the node needs (no answerer's email).
        assert body["command"] == {
            "resume": {
                "int-ours": {
                    "task_id": "tk-p",
                    "status": "completed",
                    "response": {"approved": True, "note": "ok"},
                    "verification_attempt": 0,
                }
            }
        }
        assert len(platform.requests) == 2


async def test_platform_resume_finds_subgraph_interrupts_on_tasks() -> None:
    ours = {"value": {INTERRUPT_KEY: {"task_id": "tk-sub"}}, "id": "int-sub"}
    with PlatformStandIn() as platform:
        platform.states["th-2"] = _platform_state(
            [],
            [{"id": "s", "name": "sub", "error": None, "interrupts": [ours],
              "checkpoint": None, "state": None, "result": None}],
        )  # fmt: skip
        client = get_client(url=platform.url, api_key=None)
        assert await resume_on_platform(client, _event("tk-sub", "th-2"), assistant_id="a")
        assert platform.requests[1][2]["command"]["resume"].keys() == {"int-sub"}


async def test_platform_resume_without_that_interrupt_is_a_no_op() -> None:
    other = {"value": {INTERRUPT_KEY: {"task_id": "tk-other"}}, "id": "int-other"}
    with PlatformStandIn() as platform:
        platform.states["done"] = _platform_state([], [])
        platform.states["moved-on"] = _platform_state(
            [other],
            [{"id": "b", "name": "approve", "error": None, "interrupts": [other],
              "checkpoint": None, "state": None, "result": None}],
        )  # fmt: skip
        client = get_client(url=platform.url, api_key=None)
        for thread in ("done", "moved-on", "unknown"):
            event = _event("tk-late", thread, "approve:b")
            assert await resume_on_platform(client, event, assistant_id="a") is None
        # Only state reads: no run was created, so nothing restarted from START.
        assert [r[0] for r in platform.requests] == ["GET", "GET", "GET"]


async def test_platform_resume_before_the_interrupt_asks_for_a_retry() -> None:
    with PlatformStandIn() as platform:
        platform.states["th-3"] = _platform_state(
            [],
            [{"id": "c", "name": "approve", "error": None, "interrupts": [],
              "checkpoint": None, "state": None, "result": None}],
        )  # fmt: skip
        client = get_client(url=platform.url, api_key=None)
        with pytest.raises(RetryLaterError, match="has not interrupted"):
            await resume_on_platform(client, _event("tk-c", "th-3", "approve:c"), assistant_id="a")
        with pytest.raises(ValueError, match="thread_id"):
            await resume_on_platform(client, {"task_id": "x"}, assistant_id="a")
        assert [r[0] for r in platform.requests] == ["GET"]
