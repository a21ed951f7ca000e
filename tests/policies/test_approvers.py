"""Allowed approvers, fail closed, through the JSON API (SQLite and PostgreSQL).

A task with ``approvers`` takes answers and claims only from a listed email, a member of a
listed role, or an operator while ``operators_may_answer`` holds; its assignee is not
exempt. Everyone else is refused with 403 ``NOT_AN_APPROVER`` and nothing changes (status,
version, audit trail). Listed approvers who are not the assignee can see the task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.policies._people import Company, company

APPROVE = {"response": {"approved": True, "notes": "fine"}}


@pytest.fixture
async def acme(database_url: str) -> AsyncIterator[Company]:
    async with company(database_url) as made:
        yield made


async def unchanged_since(acme: Company, task_id: str, before: Any, audit: int) -> None:
    after = await acme.row(task_id)
    assert (after["status"], after["version"], after["response_enc"]) == (
        before["status"],
        before["version"],
        before["response_enc"],
    )
    assert len(await acme.audit(task_id)) == audit


async def test_the_assignee_who_is_not_listed_is_refused_and_nothing_changes(
    acme: Company,
) -> None:
    task_id = await acme.create(assign_to="rita@acme.com", approvers=["role:finance"])
    assert (await acme.row(task_id))["assigned_to_user_id"] == acme.ids["rita@acme.com"]
    before, audit = await acme.row(task_id), len(await acme.audit(task_id))
    async with acme.as_user("rita@acme.com") as rita:
        # She sees her task (it is assigned to her) but may not decide it.
        assert (await rita.get(f"/api/tasks/{task_id}")).status_code == 200
        answered = await rita.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
        claimed = await rita.post(f"/api/tasks/{task_id}/claim")
    assert answered.status_code == 403, answered.text
    assert answered.json()["error"] == "NOT_AN_APPROVER"
    assert claimed.status_code == 403, claimed.text
    assert claimed.json()["error"] == "NOT_AN_APPROVER"
    await unchanged_since(acme, task_id, before, audit)


async def test_a_role_member_sees_and_answers_a_task_not_assigned_to_them(
    acme: Company,
) -> None:
    task_id = await acme.create(assign_to="rita@acme.com", approvers=["role:finance"])
    async with acme.as_user("bob@acme.com") as bob:
        seen = await bob.get(f"/api/tasks/{task_id}")
        assert seen.status_code == 200, seen.text
        answered = await bob.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
    assert answered.status_code == 200, answered.text
    view = answered.json()
    assert view["status"] == "completed"
    assert view["completed_by_user_id"] == acme.ids["bob@acme.com"]
    assert view["completed_by_email"] == "bob@acme.com"
    assert view["response"] == {"approved": True, "notes": "fine"}


async def test_a_listed_email_answers_and_claims(acme: Company) -> None:
    task_id = await acme.create(approvers=["Alice@Acme.com"])
    async with acme.as_user("alice@acme.com") as alice:
        claimed = await alice.post(f"/api/tasks/{task_id}/claim")
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["assigned_to_user_id"] == acme.ids["alice@acme.com"]
        answered = await alice.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
    assert answered.status_code == 200, answered.text
    assert answered.json()["completed_by_email"] == "alice@acme.com"


async def test_someone_neither_listed_nor_assigned_does_not_see_the_task(
    acme: Company,
) -> None:
    task_id = await acme.create(approvers=["role:finance"])
    before, audit = await acme.row(task_id), len(await acme.audit(task_id))
    async with acme.as_user("rita@acme.com") as rita:
        assert (await rita.get(f"/api/tasks/{task_id}")).status_code == 404
        answered = await rita.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
    assert answered.status_code == 404, answered.text
    await unchanged_since(acme, task_id, before, audit)


async def test_operators_answer_unless_the_policy_says_otherwise(acme: Company) -> None:
    allowed = await acme.create(approvers=["alice@acme.com"])
    async with acme.as_user("olga@acme.com") as olga:
        done = await olga.post(f"/api/tasks/{allowed}/complete", json=APPROVE)
    assert done.status_code == 200, done.text
    assert done.json()["completed_by_email"] == "olga@acme.com"
    by_token = await acme.create(approvers=["alice@acme.com"])
    done = await acme.admin.post(f"/api/tasks/{by_token}/complete", json=APPROVE)
    assert done.status_code == 200, done.text

    closed = await acme.create(approvers=["alice@acme.com"], operators_may_answer=False)
    before, audit = await acme.row(closed), len(await acme.audit(closed))
    async with acme.as_user("olga@acme.com") as olga:
        refused = await olga.post(f"/api/tasks/{closed}/complete", json=APPROVE)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "NOT_AN_APPROVER"
    refused = await acme.admin.post(f"/api/tasks/{closed}/complete", json=APPROVE)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "NOT_AN_APPROVER"
    await unchanged_since(acme, closed, before, audit)
    # The listed person still may.
    async with acme.as_user("alice@acme.com") as alice:
        done = await alice.post(f"/api/tasks/{closed}/complete", json=APPROVE)
    assert done.status_code == 200, done.text


async def test_agent_keys_never_answer(acme: Company) -> None:
    made = await acme.admin.post("/api/admin/agent-keys", json={"name": "bot"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    async with acme.client() as agent:
        agent.headers["Authorization"] = f"Bearer {key}"
        task_id = await acme.create(agent, approvers=["alice@acme.com"])
        refused = await agent.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "FORBIDDEN"


async def test_a_task_without_approvers_keeps_the_assignee_rule(acme: Company) -> None:
    task_id = await acme.create(assign_to="rita@acme.com")
    async with acme.as_user("bob@acme.com") as bob:
        assert (await bob.post(f"/api/tasks/{task_id}/complete", json=APPROVE)).status_code == 404
    async with acme.as_user("rita@acme.com") as rita:
        done = await rita.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
    assert done.status_code == 200, done.text
