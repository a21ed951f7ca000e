"""``await_human`` checks the answer's receipt when ``AWAITHUMANS_RECEIPT_PUBLIC_KEY`` is set.

Against a real server process: with the server's key the call returns the answer; with
another server's key it raises ``ReceiptInvalidError`` (the answer is not trusted); a key
that is not a key fails before any task is created; a receipt altered in the database
(read back after a restart) is refused on the replay that returns the stored answer.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from awaithumans import ReceiptInvalidError, await_human
from awaithumans.core._receipts import PUBLIC_KEY_ENV
from awaithumans.server.db.models import TaskRow
from awaithumans.server.security import KeyRing, generate_payload_key
from awaithumans.server.security.receipts import signer_for
from awaithumans.testing import ServerProcess
from tests._waiting import until

pytestmark = pytest.mark.e2e


class Refund(BaseModel):
    order_id: str
    amount_usd: float


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


def admin(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=10
    )


def ask(server: ServerProcess, key: str) -> Any:
    return await_human(
        task="Refund $42.50?",
        payload_schema=Refund,
        payload=Refund(order_id="ord_7", amount_usd=42.5),
        response_schema=Decision,
        timeout_seconds=600,
        idempotency_key=key,
        server_url=server.url,
        api_key=server.admin_token,
    )


async def answer_when_asked(server: ServerProcess, key: str, response: dict[str, Any]) -> str:
    """Wait for the task ``key`` names to exist, answer it; its id."""

    async def asked() -> str | None:
        async with admin(server) as http:
            items = (await http.get("/api/tasks")).json()["items"]
        found = [t["id"] for t in items if t["idempotency_key"] == key]
        return found[0] if found else None

    task_id: str = await until(asked, timeout=15, why=server.logs)
    async with admin(server) as http:
        done = await http.post(f"/api/tasks/{task_id}/complete", json={"response": response})
    assert done.status_code == 200, done.text
    return task_id


async def server_key(server: ServerProcess) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        key: str = (await http.get("/api/receipts/public-keys")).json()["keys"][0]["public_key"]
    return key


async def test_await_human_checks_the_receipt(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(server))
    good = f"sdk-{uuid.uuid4().hex}"
    waiting = asyncio.create_task(ask(server, good))
    await answer_when_asked(server, good, {"approved": True, "notes": "ok"})
    assert await asyncio.wait_for(waiting, 20) == Decision(approved=True, notes="ok")

    # Another server's key: the answer arrives, and is not trusted.
    stranger = signer_for(KeyRing.from_text(generate_payload_key()))
    monkeypatch.setenv(PUBLIC_KEY_ENV, stranger.public_key())
    other = f"sdk-{uuid.uuid4().hex}"
    waiting = asyncio.create_task(ask(server, other))
    task_id = await answer_when_asked(server, other, {"approved": True})
    with pytest.raises(ReceiptInvalidError) as refused:
        await asyncio.wait_for(waiting, 20)
    assert (refused.value.reason, refused.value.task_id) == ("unknown_key", task_id)

    # Not a key at all: refused before anyone is asked.
    monkeypatch.setenv(PUBLIC_KEY_ENV, "not-a-key")
    never = f"sdk-{uuid.uuid4().hex}"
    with pytest.raises(ReceiptInvalidError) as refused:
        await ask(server, never)
    assert refused.value.reason == "public_key"
    async with admin(server) as http:
        items = (await http.get("/api/tasks")).json()["items"]
    assert never not in {t["idempotency_key"] for t in items}


async def test_a_receipt_altered_in_the_database_is_refused(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(server))
    key = f"sdk-{uuid.uuid4().hex}"
    waiting = asyncio.create_task(ask(server, key))
    task_id = await answer_when_asked(server, key, {"approved": False})
    assert await asyncio.wait_for(waiting, 20) == Decision(approved=False)

    # Someone with database access rewrites who answered, in the stored receipt: it no
    # longer matches its signature.
    server.stop()
    engine = create_async_engine(server.database_url)
    try:
        async with engine.begin() as conn:
            receipt = await conn.scalar(select(TaskRow.receipt).where(TaskRow.id == task_id))
            assert receipt is not None
            await conn.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id)
                .values(receipt={**receipt, "answered_by": {"id": "usr_boss", "email": None}})
            )
    finally:
        await engine.dispose()
    server.start()
    # A rerun of the same call finds the stored answer, and checks its receipt.
    with pytest.raises(ReceiptInvalidError) as refused:
        await ask(server, key)
    assert (refused.value.reason, refused.value.task_id) == ("signature", task_id)
    # Without a key configured, the same call returns the answer as before.
    monkeypatch.delenv(PUBLIC_KEY_ENV)
    assert await ask(server, key) == Decision(approved=False)
