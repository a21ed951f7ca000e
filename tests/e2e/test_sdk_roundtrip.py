"""The SDK against a real server process: create, wait, answer, and the typed result."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import BaseModel

from awaithumans import (
    IdempotencyConflictError,
    SchemaValidationError,
    TaskCancelledError,
    await_human,
)
from awaithumans.testing import ServerProcess


class Refund(BaseModel):
    amount_usd: int
    customer_id: str
    reason: str


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


PAYLOAD = Refund(amount_usd=250, customer_id="cus_1", reason="Duplicate charge")


async def wait_for_open_task(client: httpx.AsyncClient, key: str, timeout: float = 10.0) -> str:
    """The id of the task with idempotency key ``key``, once the server has it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        page = (await client.get("/api/tasks", params={"limit": 200})).json()
        for item in page["items"]:
            if item["idempotency_key"] == key:
                return str(item["id"])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no task with key {key!r} appeared within {timeout}s")


def admin(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    )


async def ask(server: ServerProcess, key: str, **kw: object) -> Decision:
    return await await_human(
        task="Approve $250 refund?",
        payload_schema=Refund,
        payload=PAYLOAD,
        response_schema=Decision,
        timeout_seconds=900,
        idempotency_key=key,
        server_url=server.url,
        api_key=server.admin_token,
        **kw,  # type: ignore[arg-type]
    )


async def test_answer_through_api_returns_typed_decision(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    waiter = asyncio.create_task(ask(server, "refund:e2e-1"))
    async with admin(server) as client:
        task_id = await wait_for_open_task(client, "refund:e2e-1")
        resp = await client.post(
            f"/api/tasks/{task_id}/complete",
            json={"response": {"approved": True, "notes": "Duplicate charge confirmed."}},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "completed"
    decision = await asyncio.wait_for(waiter, 10)
    assert decision == Decision(approved=True, notes="Duplicate charge confirmed.")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"✓ Task created: {task_id}"
    assert err[1] == f"  Review at: {server.url}/task?id={task_id}"
    assert err[2] == "  Waiting for human (timeout: 900s). Ctrl-C to abort."


async def test_rerun_after_answer_gets_stored_answer_at_once(server: ServerProcess) -> None:
    waiter = asyncio.create_task(ask(server, "refund:e2e-2"))
    async with admin(server) as client:
        task_id = await wait_for_open_task(client, "refund:e2e-2")
        await client.post(f"/api/tasks/{task_id}/complete", json={"response": {"approved": False}})
    first = await asyncio.wait_for(waiter, 10)
    again = await asyncio.wait_for(ask(server, "refund:e2e-2"), 10)
    assert first == again == Decision(approved=False)


async def test_same_key_different_content_is_a_conflict(server: ServerProcess) -> None:
    waiter = asyncio.create_task(ask(server, "refund:e2e-3"))
    async with admin(server) as client:
        await wait_for_open_task(client, "refund:e2e-3")
    with pytest.raises(IdempotencyConflictError) as info:
        await await_human(
            task="Approve $999 refund?",
            payload_schema=Refund,
            payload=PAYLOAD,
            response_schema=Decision,
            timeout_seconds=900,
            idempotency_key="refund:e2e-3",
            server_url=server.url,
            api_key=server.admin_token,
        )
    assert info.value.code == "IDEMPOTENCY_CONFLICT"
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_cancel_raises_typed_error(server: ServerProcess) -> None:
    waiter = asyncio.create_task(ask(server, "refund:e2e-4"))
    async with admin(server) as client:
        task_id = await wait_for_open_task(client, "refund:e2e-4")
        assert (await client.post(f"/api/tasks/{task_id}/cancel")).status_code == 200
    with pytest.raises(TaskCancelledError) as info:
        await asyncio.wait_for(waiter, 10)
    assert info.value.code == "TASK_CANCELLED"


async def test_bad_payload_is_refused_before_sending(sqlite_server: ServerProcess) -> None:
    with pytest.raises(SchemaValidationError) as info:
        await await_human(
            task="Approve?",
            payload_schema=Refund,
            payload={"amount_usd": "lots"},
            response_schema=Decision,
            timeout_seconds=900,
            server_url=sqlite_server.url,
            api_key=sqlite_server.admin_token,
        )
    assert info.value.code == "SCHEMA_VALIDATION_FAILED"
