"""The SDK returns a decision made by several approvers with each approver's vote.

A real server process (SQLite and PostgreSQL); ``await_human`` waits on a task that needs
two approvals while two directory users vote through the API; the returned answer is the
deciding vote's, and ``awaithumans.approvals_of`` lists both votes. A plain answer has none.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from pydantic import BaseModel

import awaithumans
from awaithumans import Approval, approvals_of, await_human, is_default
from awaithumans.core import approvals_of as core_approvals_of
from awaithumans.testing import ServerProcess
from tests._api import add_user, admin
from tests._waiting import until

PASSWORD = "correct horse battery staple"


class Refund(BaseModel):
    order_id: str


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")


async def vote(server: ServerProcess, email: str, task_id: str, approved: bool) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        got = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert got.status_code == 200, got.text
        done = await http.post(
            f"/api/tasks/{task_id}/complete",
            json={"response": {"approved": approved, "notes": f"from {email}"}},
        )
        assert done.status_code == 200, done.text


async def open_task(server: ServerProcess, key: str) -> str:
    async with admin(server) as http:
        page = (await http.get("/api/tasks", params={"limit": 50})).json()
    for item in page["items"]:
        if item["idempotency_key"] == key:
            return str(item["id"])
    return ""


async def test_await_human_returns_the_votes_behind_the_decision(server: ServerProcess) -> None:
    await add_user(server, "Alice Approver", email="alice@acme.com")
    await add_user(server, "Bob Billing", email="bob@acme.com")
    key = f"sdk-{uuid.uuid4().hex}"
    waiting = asyncio.create_task(
        await_human(
            task="Refund order ord_9?",
            payload_schema=Refund,
            payload=Refund(order_id="ord_9"),
            response_schema=Decision,
            timeout_seconds=600,
            idempotency_key=key,
            approvers=["alice@acme.com", "bob@acme.com"],
            approvals_required=2,
            server_url=server.url,
            api_key=server.admin_token,
        )
    )
    task_id = await until(lambda: open_task(server, key))
    await vote(server, "alice@acme.com", task_id, True)
    assert not waiting.done()
    await vote(server, "bob@acme.com", task_id, True)
    answer = await asyncio.wait_for(waiting, 30)
    assert answer == Decision(approved=True, notes="from bob@acme.com")
    assert not is_default(answer)
    votes = approvals_of(answer)
    assert [(v.email, v.approved, v.channel) for v in votes] == [
        ("alice@acme.com", True, "api"),
        ("bob@acme.com", True, "api"),
    ]
    assert all(isinstance(v, Approval) for v in votes)
    assert votes[0].display_name == "Alice Approver"
    assert votes[0].response == {"approved": True, "notes": "from alice@acme.com"}
    assert votes[0].at <= votes[1].at
    assert core_approvals_of is awaithumans.approvals_of
    # The record is frozen, and a copy of the answer is a plain answer again.
    with pytest.raises(AttributeError):
        votes[0].approved = False  # type: ignore[misc]
    assert approvals_of(answer.model_copy()) == []


async def test_a_plain_answer_has_no_votes(server: ServerProcess) -> None:
    key = f"sdk-{uuid.uuid4().hex}"
    waiting = asyncio.create_task(
        await_human(
            task="Refund order ord_10?",
            payload_schema=Refund,
            payload=Refund(order_id="ord_10"),
            response_schema=Decision,
            timeout_seconds=600,
            idempotency_key=key,
            server_url=server.url,
            api_key=server.admin_token,
        )
    )
    task_id = await until(lambda: open_task(server, key))
    async with admin(server) as http:
        done = await http.post(
            f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}}
        )
    assert done.status_code == 200, done.text
    answer = await asyncio.wait_for(waiting, 30)
    assert answer.approved is True
    assert approvals_of(answer) == []
