"""The LangGraph node checks the answer's decision receipt when a public key is set.

A real awaithumans server, a SQLite checkpointer, the relay served on the test's loop:
with the server's key the resumed node returns the answer; with another server's key the
node raises ``ReceiptInvalidError`` (the relay reports it, the interrupt stays pending); an
answer changed on its way to the node (a forged resume) fails too, and the real one passes.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from awaithumans import ReceiptInvalidError
from awaithumans.adapters.langgraph import INTERRUPT_KEY, Resumed, resume_from_event
from awaithumans.core._receipts import PUBLIC_KEY_ENV
from awaithumans.server.security import KeyRing, generate_payload_key
from awaithumans.server.security.receipts import signer_for
from awaithumans.testing import ServerProcess
from tests.adapters.langgraph.conftest import serve_resumer
from tests.adapters.langgraph.graphs import refund_graph
from tests.adapters.langgraph.test_langgraph_agent_inbox import graph_of as inbox_graph
from tests.adapters.langgraph.test_langgraph_agent_inbox import interrupted

# Nobody listens there: the server's webhook for these tasks never resumes anything, so
# the test alone decides what the node is resumed with.
NOWHERE = "http://127.0.0.1:9/hook"


def api(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    )


async def server_key(server: ServerProcess) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        key: str = (await http.get("/api/receipts/public-keys")).json()["keys"][0]["public_key"]
    return key


async def complete(server: ServerProcess, task_id: str, response: dict[str, Any]) -> None:
    async with api(server) as http:
        done = await http.post(f"/api/tasks/{task_id}/complete", json={"response": response})
    assert done.status_code == 200, done.text


async def task_of(server: ServerProcess, task_id: str) -> dict[str, Any]:
    async with api(server) as http:
        found: dict[str, Any] = (await http.get(f"/api/tasks/{task_id}")).json()
    return found


def config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


async def ask(graph: Any, thread: str, callback_url: str) -> str:
    """Run the graph to its interrupt; the task id it waits for."""
    order = f"r-{uuid.uuid4().hex[:8]}"
    first = await graph.ainvoke(
        {"order_id": order, "amount": 42, "callback_url": callback_url}, config(thread)
    )
    task_id: str = first["__interrupt__"][0].value[INTERRUPT_KEY]["task_id"]
    return task_id


async def test_the_servers_key_passes_another_key_fails(
    aw_server: ServerProcess,
    secret: str,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph = refund_graph(sqlite_checkpointer)
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))
    async with serve_resumer(graph, secret) as resumer:
        good = f"t-{uuid.uuid4().hex[:8]}"
        task_id = await ask(graph, good, resumer.url)
        await complete(aw_server, task_id, {"approved": True, "note": "signed"})
        call = await resumer.next()
        assert (call.status, call.reply) == (200, {"resumed": True, "outcome": "resumed"})
        state = await graph.aget_state(config(good))
        assert state.next == ()
        assert (state.values["approved"], state.values["note"]) == (True, "signed")

        # Another server's key: the answer arrives and is not trusted.
        stranger = signer_for(KeyRing.from_text(generate_payload_key()))
        monkeypatch.setenv(PUBLIC_KEY_ENV, stranger.public_key())
        bad = f"t-{uuid.uuid4().hex[:8]}"
        task_id = await ask(graph, bad, resumer.url)
        await complete(aw_server, task_id, {"approved": True})
        call = await resumer.next()
        # Final for the server (redelivering cannot make the receipt check out) ...
        assert (call.status, call.reply) == (
            200,
            {
                "resumed": True,
                "outcome": "resumed",
                "reason": "the resumed run raised RECEIPT_INVALID",
            },
        )
    # ... and the node raised the typed error: the approval never reached "pay".
    state = await graph.aget_state(config(bad))
    assert state.next == ("approve",)
    assert "ReceiptInvalidError" in repr(state.tasks[0].error)
    assert "approved" not in state.values
    # Resumed directly, the same error comes out of the graph run, saying why.
    event = {**(await task_of(aw_server, task_id)), "task_id": task_id}
    with pytest.raises(ReceiptInvalidError) as refused:
        await resume_from_event(graph, event)
    assert (refused.value.code, refused.value.reason) == ("RECEIPT_INVALID", "unknown_key")
    assert refused.value.task_id == task_id

    # With the right key back, running the thread again checks the same answer and goes on.
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))
    await graph.ainvoke(None, config(bad))
    state = await graph.aget_state(config(bad))
    assert (state.next, state.values["approved"], state.values["paid"]) == ((), True, True)


async def test_an_answer_changed_on_the_way_to_the_node_is_refused(
    aw_server: ServerProcess,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph = refund_graph(sqlite_checkpointer)
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))

    async def asked() -> tuple[str, str, dict[str, Any]]:
        # A node consumes the first value it is resumed with (LangGraph keeps it), so each
        # case asks on its own thread.
        thread = f"t-{uuid.uuid4().hex[:8]}"
        task_id = await ask(graph, thread, NOWHERE)
        return thread, task_id, (await task_of(aw_server, task_id))["task_metadata"]

    def event(task_id: str, metadata: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        return {
            "task_id": task_id,
            "status": "completed",
            "response": response,
            "task_metadata": metadata,
        }

    # Before anyone answered: no signed decision backs the answer.
    thread, task_id, metadata = await asked()
    with pytest.raises(ReceiptInvalidError) as refused:
        await resume_from_event(graph, event(task_id, metadata, {"approved": True}))
    assert (refused.value.reason, refused.value.task_id) == ("missing", task_id)
    assert "not completed on the server" in refused.value.message

    # The person rejects; a resume saying "approved" does not match the signed answer.
    thread, task_id, metadata = await asked()
    await complete(aw_server, task_id, {"approved": False, "note": "no"})
    with pytest.raises(ReceiptInvalidError) as refused:
        await resume_from_event(graph, event(task_id, metadata, {"approved": True, "note": "no"}))
    assert (refused.value.reason, refused.value.task_id) == ("mismatch", task_id)
    assert "answer hash" in refused.value.message
    assert "approved" not in (await graph.aget_state(config(thread))).values

    # A bare answer resumed by hand is held to the same receipt.
    thread, task_id, metadata = await asked()
    await complete(aw_server, task_id, {"approved": False, "note": "no"})
    (pending,) = (await graph.aget_state(config(thread))).interrupts
    with pytest.raises(ReceiptInvalidError) as refused:
        await graph.ainvoke(Command(resume={pending.id: {"approved": True}}), config(thread))
    assert (refused.value.reason, refused.value.task_id) == ("mismatch", task_id)

    # The answer the person gave resumes the node.
    thread, task_id, metadata = await asked()
    await complete(aw_server, task_id, {"approved": False, "note": "no"})
    result = await resume_from_event(
        graph, event(task_id, metadata, {"approved": False, "note": "no"})
    )
    assert result.outcome is Resumed.RESUMED
    state = await graph.aget_state(config(thread))
    assert state.next == ()
    assert (state.values["approved"], state.values["paid"]) == (False, False)


async def test_a_key_that_is_not_a_key_fails_before_anyone_is_asked(
    aw_server: ServerProcess,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph = refund_graph(sqlite_checkpointer)
    monkeypatch.setenv(PUBLIC_KEY_ENV, "not-a-key")
    thread = f"t-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ReceiptInvalidError) as refused:
        await ask(graph, thread, NOWHERE)
    assert refused.value.reason == "public_key"
    async with api(aw_server) as http:
        items = (await http.get("/api/tasks", params={"limit": 200})).json()["items"]
    threads = [
        ((i.get("task_metadata") or {}).get("langgraph") or {}).get("thread_id") for i in items
    ]
    assert thread not in threads


async def test_an_agent_inbox_answer_passes_when_recorded_and_fails_when_not(
    aw_server: ServerProcess,
    sqlite_checkpointer: BaseCheckpointSaver[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))
    graph = inbox_graph(sqlite_checkpointer)
    accept: Command[Any] = Command(resume=[{"type": "accept", "args": None}])

    # Recorded on the task (an admin credential may answer): the server signs it.
    thread = f"t-{uuid.uuid4().hex[:8]}"
    request = await interrupted(graph, thread)
    done = await graph.ainvoke(accept, config(thread))
    assert done["decision"]["type"] == "accept"
    task = await task_of(aw_server, request[INTERRUPT_KEY]["task_id"])
    assert (task["status"], task["receipt"]["channel"]) == ("completed", "api")

    # An agent key may not answer: the task is closed, nothing is signed, the check refuses.
    async with api(aw_server) as http:
        made = await http.post("/api/admin/agent-keys", json={"name": "inbox receipts"})
    assert made.status_code == 201, made.text
    monkeypatch.setenv("AWAITHUMANS_API_KEY", made.json()["key"])
    thread = f"t-{uuid.uuid4().hex[:8]}"
    request = await interrupted(graph, thread)
    with pytest.raises(ReceiptInvalidError) as refused:
        await graph.ainvoke(accept, config(thread))
    task_id = request[INTERRUPT_KEY]["task_id"]
    assert (refused.value.reason, refused.value.task_id) == ("missing", task_id)
    assert (await task_of(aw_server, task_id))["status"] == "cancelled"
