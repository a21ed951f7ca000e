"""Several approvals "of the assignees or a pool": with no approvers named, the people
``assign_to`` names (its emails, its role, its pool) are the voters; one assignee alone can
never make two approvals, so that is refused at create."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.policies._people import Company, company

YES = {"response": {"approved": True}}


@pytest.fixture
async def acme(database_url: str) -> AsyncIterator[Company]:
    async with company(database_url) as made:
        yield made


async def vote(acme: Company, email: str, task_id: str) -> Any:
    async with acme.as_user(email) as who:
        return await who.post(f"/api/tasks/{task_id}/complete", json=YES)


async def test_two_of_the_listed_assignees_complete_it(acme: Company) -> None:
    task_id = await acme.create(assign_to=["alice@acme.com", "rita@acme.com"], approvals_required=2)
    policy = (await acme.row(task_id))["policy"]
    assert policy["approvers"]["emails"] == ["alice@acme.com", "rita@acme.com"]
    # Someone assign_to does not name may not vote (fail closed): to them it is not there.
    assert (await vote(acme, "bob@acme.com", task_id)).json()["error"] == "TASK_NOT_FOUND"
    assert (await vote(acme, "alice@acme.com", task_id)).status_code == 200
    assert (await acme.row(task_id))["status"] != "completed"
    assert (await vote(acme, "rita@acme.com", task_id)).status_code == 200
    view = (await acme.admin.get(f"/api/tasks/{task_id}")).json()
    assert view["status"] == "completed"
    assert [a["email"] for a in view["approvals"]] == ["alice@acme.com", "rita@acme.com"]


async def test_two_members_of_the_assigned_role_complete_it(acme: Company) -> None:
    task_id = await acme.create(assign_to={"role": "finance"}, approvals_required=2)
    row = await acme.row(task_id)
    assert row["policy"]["approvers"]["roles"] == ["finance"]
    # Routing gave it to one of them; the other votes too.
    assert row["assigned_to_user_id"] in {acme.ids["bob@acme.com"], acme.ids["carol@acme.com"]}
    assert (await vote(acme, "bob@acme.com", task_id)).status_code == 200
    assert (await vote(acme, "carol@acme.com", task_id)).status_code == 200
    assert (await acme.row(task_id))["status"] == "completed"


async def test_one_assignee_cannot_make_two_approvals(acme: Company) -> None:
    refused = await acme.admin.post(
        "/api/tasks",
        json={
            "task": "Refund?",
            "payload": {},
            "payload_schema": {"type": "object"},
            "response_schema": {
                "type": "object",
                "properties": {"approved": {"type": "boolean"}},
                "required": ["approved"],
            },
            "timeout_seconds": 600,
            "idempotency_key": "one-assignee",
            "assign_to": {"email": "alice@acme.com"},
            "approvals_required": 2,
        },
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "INVALID_POLICY"
    assert "name only 1 person" in refused.json()["message"]
