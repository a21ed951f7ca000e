"""End-to-end: a LangGraph graph asks, a human answers over the API, the webhook resumes it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from standardwebhooks.webhooks import Webhook

from awaithumans.adapters.langgraph import (
    INTERRUPT_KEY,
    Resumed,
    answer_from_resume,
    relay_app,
    resume_from_event,
)
from awaithumans.core import (
    SchemaValidationError,
    TaskCancelledError,
    TaskTimeoutError,
    VerificationExhaustedError,
)
from awaithumans.core._errors import InvalidResumeError, RetryLaterError
from awaithumans.core._wire import TaskView
from awaithumans.testing import ServerProcess
from tests.adapters.langgraph.conftest import serve_resumer
from tests.adapters.langgraph.graphs import (
    RUNS,
    Approval,
    batch_graph,
    refund_graph,
    two_step_graph,
)

# The relay's 200 replies (what the server's delivery queue records).
RESUMED = {"resumed": True, "outcome": "resumed"}
NOT_WAITING = {
    "resumed": False,
    "outcome": "not_waiting",
    "reason": "no interrupt waits for this task",
}


def api(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    )


async def tasks_of(server: ServerProcess, thread_id: str) -> list[dict[str, Any]]:
    async with api(server) as http:
        items = (await http.get("/api/tasks", params={"limit": 200})).json()["items"]
    return [
        i
        for i in items
        if ((i.get("task_metadata") or {}).get("langgraph") or {}).get("thread_id") == thread_id
    ]


async def act(server: ServerProcess, task_id: str, verb: str, body: Any = None) -> None:
    async with api(server) as http:
        resp = await http.post(f"/api/tasks/{task_id}/{verb}", json=body)
    assert resp.status_code == 200, resp.text


def config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


async def test_refund_approved_through_the_webhook(
    aw_server: ServerProcess, secret: str, checkpointer: BaseCheckpointSaver[Any]
) -> None:
    graph = refund_graph(checkpointer)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    order = f"o-{uuid.uuid4().hex[:8]}"
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke(
            {"order_id": order, "amount": 42, "callback_url": resumer.url}, config(thread)
        )
        (pending,) = first["__interrupt__"]
        info = pending.value[INTERRUPT_KEY]
        assert info["payload"] == {"order_id": order, "amount": 42}
        assert info["task"] == f"Refund 42 for order {order}?"
        assert info["review_url"]
        assert info["timeout_at"]

        # Running the thread again re-executes the node: same task, not a second one.
        again = await graph.ainvoke(None, config(thread))
        assert again["__interrupt__"][0].value == pending.value
        (task,) = await tasks_of(aw_server, thread)
        assert task["id"] == info["task_id"]
        assert task["task_metadata"]["app"] == "refunds"
        assert task["task_metadata"]["langgraph"]["checkpoint_ns"].startswith("approve:")

        await act(aw_server, task["id"], "complete", {"response": {"approved": True, "note": "ok"}})
        call = await resumer.next()
        assert (call.status, call.reply) == (200, RESUMED)

        state = await graph.aget_state(config(thread))
        assert state.next == ()
        assert state.values["approved"] is True
        assert state.values["paid"] is True
        assert state.values["note"] == "ok"
        assert RUNS[order] == 3  # first run, the explicit re-run, the resume
        assert len(await tasks_of(aw_server, thread)) == 1

        # The same signed webhook again (a server retry): acknowledged, nothing re-run.
        dup = await resumer.replay(call)
        assert (dup.status_code, dup.json()) == (200, NOT_WAITING)
        await resumer.next()
        assert RUNS[order] == 3
        assert (await graph.aget_state(config(thread))).values == state.values


async def test_cancel_raises_task_cancelled_inside_the_node(
    aw_server: ServerProcess, secret: str, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    graph = refund_graph(sqlite_checkpointer)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke(
            {"order_id": "o-cancel", "amount": 5, "callback_url": resumer.url}, config(thread)
        )
        task_id = first["__interrupt__"][0].value[INTERRUPT_KEY]["task_id"]
        await act(aw_server, task_id, "cancel")
        call = await resumer.next()
        # Final for the server (a retry cannot change the human's decision) ...
        assert (call.status, call.reply) == (
            200,
            {**RESUMED, "reason": "the resumed run raised TASK_CANCELLED"},
        )
    # ... and the node raised the typed error, which LangGraph records on the task.
    state = await graph.aget_state(config(thread))
    assert state.next == ("approve",)
    assert "TaskCancelledError" in repr(state.tasks[0].error)
    # Resumed directly, the same error comes out of the graph run.
    event = {
        "task_id": task_id,
        "status": "cancelled",
        "response": None,
        "task_metadata": {"langgraph": {"thread_id": thread}},
    }
    with pytest.raises(TaskCancelledError) as err:
        await resume_from_event(graph, event)
    assert err.value.code == "TASK_CANCELLED"
    assert err.value.task_id == task_id


async def test_fan_out_resumes_each_branch_with_its_own_answer(
    aw_server: ServerProcess, secret: str, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    graph = batch_graph(sqlite_checkpointer)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    orders = [f"b-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke({"orders": orders, "callback_url": resumer.url}, config(thread))
        assert len(first["__interrupt__"]) == 3
        infos = [i.value[INTERRUPT_KEY] for i in first["__interrupt__"]]
        tasks = {i["payload"]["order_id"]: i["task_id"] for i in infos}
        assert sorted(tasks) == sorted(orders)
        assert sorted(tasks.values()) == sorted(t["id"] for t in await tasks_of(aw_server, thread))
        verdicts = {orders[0]: True, orders[1]: False, orders[2]: True}
        for order, approved in verdicts.items():
            note = f"note-{order}"
            await act(
                aw_server,
                tasks[order],
                "complete",
                {"response": {"approved": approved, "note": note}},
            )
        replies = [await resumer.next() for _ in orders]
        assert all(c.status == 200 and c.reply == RESUMED for c in replies), replies
    state = await graph.aget_state(config(thread))
    assert state.next == ()
    # Checkpoint serialisation turns the tuples into lists.
    assert sorted(map(tuple, state.values["results"])) == sorted(
        (o, a, f"note-{o}") for o, a in verdicts.items()
    )
    # Branches still waiting were re-executed on each resume, without new tasks.
    assert len(await tasks_of(aw_server, thread)) == 3
    assert sum(RUNS[o] for o in orders) > 3


async def test_a_cancelled_branch_does_not_lose_the_others_answers(
    aw_server: ServerProcess, secret: str, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    graph = batch_graph(sqlite_checkpointer)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    orders = [f"c-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke({"orders": orders, "callback_url": resumer.url}, config(thread))
        tasks = {
            i.value[INTERRUPT_KEY]["payload"]["order_id"]: i.value[INTERRUPT_KEY]["task_id"]
            for i in first["__interrupt__"]
        }
        # Answer one, cancel the middle one, then answer the last: the middle branch's
        # outcome arrives between the others and must not sink them.
        await act(aw_server, tasks[orders[0]], "complete", {"response": {"approved": True}})
        assert (await resumer.next()).reply == RESUMED
        await act(aw_server, tasks[orders[1]], "cancel")
        assert (await resumer.next()).reply == RESUMED
        await act(aw_server, tasks[orders[2]], "complete", {"response": {"approved": True}})
        assert (await resumer.next()).reply == RESUMED
    state = await graph.aget_state(config(thread))
    assert state.next == ()
    assert sorted(map(tuple, state.values["results"])) == sorted(
        [(orders[0], True, ""), (orders[1], False, "cancelled"), (orders[2], True, "")]
    )


async def test_two_asks_in_one_node_get_their_own_tasks_and_interrupts(
    aw_server: ServerProcess, secret: str, sqlite_checkpointer: BaseCheckpointSaver[Any]
) -> None:
    graph = two_step_graph(sqlite_checkpointer)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    async with serve_resumer(graph, secret) as resumer:
        first = await graph.ainvoke(
            {"order_id": "o-two", "callback_url": resumer.url}, config(thread)
        )
        manager = first["__interrupt__"][0].value[INTERRUPT_KEY]
        await act(aw_server, manager["task_id"], "complete", {"response": {"approved": True}})
        manager_call = await resumer.next()
        assert manager_call.reply == RESUMED

        state = await graph.aget_state(config(thread))
        (finance_interrupt,) = state.interrupts
        finance = finance_interrupt.value[INTERRUPT_KEY]
        assert finance["task_id"] != manager["task_id"]
        assert "payload" not in finance  # redacted
        # The manager's webhook again, while the node waits for finance: not for this one.
        dup = await resumer.replay(manager_call)
        assert dup.json() == NOT_WAITING
        await resumer.next()

        await act(aw_server, finance["task_id"], "complete", {"response": {"approved": False}})
        assert (await resumer.next()).reply == RESUMED
    state = await graph.aget_state(config(thread))
    assert state.next == ()
    assert state.values["answers"] == [True, False]
    assert len(await tasks_of(aw_server, thread)) == 2


async def test_relay_rejects_bad_signatures_and_malformed_events(secret: str) -> None:
    app = relay_app(refund_graph(InMemorySaver()), secret)
    transport = httpx.ASGITransport(app=app)
    signer = Webhook(secret)

    def signed(body: bytes) -> dict[str, str]:
        msg_id = f"msg_{uuid.uuid4().hex}"
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(msg_id, now, body.decode()),
        }

    async with httpx.AsyncClient(transport=transport, base_url="http://resumer") as http:
        body = b'{"type": "task.completed", "data": {"task_id": "x"}}'
        bad = await http.post("/hook", content=body, headers={**signed(body), "webhook-id": "m"})
        assert bad.status_code == 401
        assert bad.json()["error"] == "INVALID_SIGNATURE"
        missing = await http.post("/hook", content=body, headers=signed(body))
        assert missing.status_code == 400
        assert missing.json()["error"] == "NOT_OUR_EVENT"
        not_json = b"nope"
        assert (
            await http.post("/hook", content=not_json, headers=signed(not_json))
        ).status_code == 400
        unknown = (
            b'{"type": "task.completed", "data": {"task_id": "x", "status": "completed",'
            b' "response": {}, "task_metadata": {"langgraph": {"thread_id": "nobody"}}}}'
        )
        reply = await http.post("/hook", content=unknown, headers=signed(unknown))
        # An unknown thread is not run from START: acknowledged, nothing resumed.
        assert (reply.status_code, reply.json()) == (200, NOT_WAITING)
        assert (await http.get("/healthz")).json() == {"ok": True}


def _view() -> TaskView:
    return TaskView.model_validate(
        {
            "id": "tk1",
            "idempotency_key": "k",
            "task": "Approve?",
            "status": "created",
            "payload_schema": {},
            "response_schema": {},
            "timeout_seconds": 600,
            "timeout_at": "2030-01-01T00:00:00Z",
            "created_at": "2030-01-01T00:00:00Z",
            "updated_at": "2030-01-01T00:00:00Z",
        }
    )


def test_resume_values_map_like_outcome_of() -> None:
    view = _view()
    assert answer_from_resume({"approved": True}, view, Approval) == Approval(approved=True)
    done = {"task_id": "tk1", "status": "completed", "response": {"approved": False}}
    assert answer_from_resume(done, view, Approval) == Approval(approved=False)
    with pytest.raises(TaskTimeoutError):
        answer_from_resume({"status": "timed_out", "response": None}, view, Approval)
    with pytest.raises(VerificationExhaustedError) as exhausted:
        answer_from_resume(
            {"status": "verification_exhausted", "response": None, "verification_attempt": 3},
            view,
            Approval,
        )
    assert exhausted.value.attempts == 3
    with pytest.raises(SchemaValidationError):
        answer_from_resume({"approved": "maybe"}, view, Approval)
    with pytest.raises(InvalidResumeError, match="tk2") as mismatch:
        answer_from_resume({**done, "task_id": "tk2"}, view, Approval)
    assert mismatch.value.code == "RESUME_TASK_MISMATCH"
    with pytest.raises(InvalidResumeError) as not_final:
        answer_from_resume({"status": "in_progress", "response": None}, view, Approval)
    assert not_final.value.code == "RESUME_NOT_FINAL"


def test_importing_awaithumans_does_not_import_langgraph() -> None:
    code = "import sys, awaithumans; sys.exit('langgraph' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


async def test_event_before_the_interrupt_asks_for_a_retry() -> None:
    # A node that has not reached its interrupt yet (here: it failed first) must not lose
    # the answer: the resumer says "not ready" (503 to the server, which retries).
    from langgraph.graph import START, StateGraph
    from typing_extensions import TypedDict

    class S(TypedDict, total=False):
        x: int

    def flaky(state: S) -> S:
        raise RuntimeError("before asking")

    builder = StateGraph(S)
    builder.add_node("flaky", flaky)
    builder.add_edge(START, "flaky")
    graph = builder.compile(checkpointer=InMemorySaver())
    with pytest.raises(RuntimeError):
        await graph.ainvoke({"x": 1}, config("early"))
    (task,) = (await graph.aget_state(config("early"))).tasks
    event = {
        "task_id": "tk-early",
        "status": "completed",
        "response": {},
        "task_metadata": {
            "langgraph": {"thread_id": "early", "checkpoint_ns": f"{task.name}:{task.id}"}
        },
    }
    with pytest.raises(RetryLaterError) as not_ready:
        await resume_from_event(graph, event)
    assert not_ready.value.code == "INTERRUPT_NOT_READY"
    # Another node's namespace (the thread moved on): a stale event, acknowledged.
    stale = {
        **event,
        "task_metadata": {"langgraph": {"thread_id": "early", "checkpoint_ns": "x:1"}},
    }
    assert (await resume_from_event(graph, stale)).outcome is Resumed.NOT_WAITING
