"""Several approvals of one person: ``assign_to`` naming a single person, by email or by
user id, with no approvers, can never make two approvals, so both are refused at create
(400 ``INVALID_POLICY``, the same message, nothing stored). Named approvers beside a user-id
assignee are fine, and they vote. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from awaithumans.core import Ask
from awaithumans.server.db.models import TaskRow
from tests.policies._people import Company, Decision, Refund, company

YES = {"response": {"approved": True}}


@pytest.fixture
async def acme(database_url: str) -> AsyncIterator[Company]:
    async with company(database_url) as made:
        yield made


async def post_task(acme: Company, **policy: Any) -> httpx.Response:
    body = Ask(
        task="Refund order ord_1?",
        payload_schema=Refund,
        payload=Refund(order_id="ord_1"),
        response_schema=Decision,
        timeout_seconds=600,
        idempotency_key=f"k-{uuid.uuid4().hex}",
        **policy,
    ).request()
    return await acme.admin.post("/api/tasks", json=body.model_dump(mode="json", exclude_none=True))


async def task_count(acme: Company) -> int:
    async with acme.app.state.ctx.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(TaskRow))).scalar_one())


async def test_one_assignee_by_id_or_by_email_is_refused_alike(acme: Company) -> None:
    alice = acme.ids["alice@acme.com"]
    messages = []
    for assign_to in ({"user_id": alice}, {"email": "alice@acme.com"}, "alice@acme.com"):
        refused = await post_task(acme, assign_to=assign_to, approvals_required=2)
        assert refused.status_code == 400, (assign_to, refused.text)
        assert refused.json()["error"] == "INVALID_POLICY"
        message = refused.json()["message"]
        assert "name only 1 person" in message
        assert "name enough approvers" in message
        assert "several assignees" in message
        messages.append(message)
    assert len(set(messages)) == 1, messages
    assert await task_count(acme) == 0


async def test_a_user_id_assignee_with_approvers_counts_the_approvers(acme: Company) -> None:
    rita = acme.ids["rita@acme.com"]
    made = await post_task(
        acme,
        assign_to={"user_id": rita},
        approvers=["alice@acme.com", "role:finance"],
        approvals_required=2,
    )
    assert made.status_code == 201, made.text
    task_id = made.json()["id"]
    assert made.json()["assigned_to_user_id"] == rita
    async with acme.as_user("rita@acme.com") as who:
        not_hers = await who.post(f"/api/tasks/{task_id}/complete", json=YES)
    assert not_hers.status_code == 403, not_hers.text
    assert not_hers.json()["error"] == "NOT_AN_APPROVER"
    for email in ("alice@acme.com", "bob@acme.com"):
        async with acme.as_user(email) as who:
            voted = await who.post(f"/api/tasks/{task_id}/complete", json=YES)
        assert voted.status_code == 200, voted.text
    assert (await acme.row(task_id))["status"] == "completed"


async def test_a_user_id_assignee_alone_still_answers_a_plain_task(acme: Company) -> None:
    rita = acme.ids["rita@acme.com"]
    made = await post_task(acme, assign_to={"user_id": rita})
    assert made.status_code == 201, made.text
    async with acme.as_user("rita@acme.com") as who:
        done = await who.post(f"/api/tasks/{made.json()['id']}/complete", json=YES)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
