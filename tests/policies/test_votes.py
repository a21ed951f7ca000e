"""M-of-N approvals through the JSON API (SQLite and PostgreSQL).

Each answer is a vote counted by the response's ``approved``; the task stays open (one
``vote`` audit row, the version moves) until the votes decide, then completes through the
usual path with the deciding vote's answer. Duplicate and requester votes are refused; the
poll and the task view carry ``approvals_required`` and every vote.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.policies._people import Company, company

YES = {"response": {"approved": True, "notes": "ok"}}
NO = {"response": {"approved": False, "notes": "too much"}}


@pytest.fixture
async def acme(database_url: str) -> AsyncIterator[Company]:
    async with company(database_url) as made:
        yield made


async def vote(acme: Company, email: str, task_id: str, body: dict[str, Any]) -> Any:
    async with acme.as_user(email) as who:
        return await who.post(f"/api/tasks/{task_id}/complete", json=body)


FINANCE_3: dict[str, Any] = {
    "approvers": ["role:finance", "alice@acme.com"],
    "approvals_required": 2,
}


async def test_two_of_three_completes_on_the_second_distinct_approval(acme: Company) -> None:
    task_id = await acme.create(**FINANCE_3)
    first = await vote(acme, "bob@acme.com", task_id, YES)
    assert first.status_code == 200, first.text
    view = first.json()
    assert view["status"] != "completed"
    assert view["approvals_required"] == 2
    assert [(a["email"], a["approved"]) for a in view["approvals"]] == [("bob@acme.com", True)]
    row = await acme.row(task_id)
    assert row["response_enc"] is None
    audit = await acme.audit(task_id)
    assert audit[-1]["action"] == "vote"
    assert audit[-1]["from_status"] == audit[-1]["to_status"]
    assert audit[-1]["detail"] == {"approved": True, "approvals": 1, "rejections": 0,
                                   "required": 2}  # fmt: skip
    assert audit[-1]["actor_id"] == acme.ids["bob@acme.com"]

    poll = (await acme.admin.get(f"/api/tasks/{task_id}/poll", params={"timeout": 1})).json()
    assert poll["status"] != "completed"
    assert poll["approvals_required"] == 2
    assert [a["user_id"] for a in poll["approvals"]] == [acme.ids["bob@acme.com"]]

    second = await vote(acme, "alice@acme.com", task_id, {"response": {"approved": True}})
    assert second.status_code == 200, second.text
    done = second.json()
    assert done["status"] == "completed"
    assert done["completed_by_email"] == "alice@acme.com"
    assert done["response"] == {"approved": True}
    assert done["receipt"] is not None
    got = (await acme.admin.get(f"/api/tasks/{task_id}")).json()
    assert [(a["email"], a["approved"], a["channel"]) for a in got["approvals"]] == [
        ("bob@acme.com", True, "api"),
        ("alice@acme.com", True, "api"),
    ]
    assert got["approvals"][0]["response"] == {"approved": True, "notes": "ok"}
    assert got["approvals"][0]["display_name"] == "Bob Billing"
    poll = (await acme.admin.get(f"/api/tasks/{task_id}/poll")).json()
    assert poll["status"] == "completed"
    assert [a["email"] for a in poll["approvals"]] == ["bob@acme.com", "alice@acme.com"]
    completed = (await acme.audit(task_id))[-1]
    assert completed["action"] == "completed"
    assert completed["detail"]["approvals"] == 2
    assert len(await acme.vote_rows(task_id)) == 2
    # A third approver has nothing left to vote on.
    late = await vote(acme, "carol@acme.com", task_id, YES)
    assert late.status_code == 409, late.text
    assert late.json()["error"] == "TASK_ALREADY_TERMINAL"


async def test_a_second_vote_by_the_same_person_is_refused(acme: Company) -> None:
    task_id = await acme.create(**FINANCE_3)
    assert (await vote(acme, "bob@acme.com", task_id, YES)).status_code == 200
    version = (await acme.row(task_id))["version"]
    again = await vote(acme, "bob@acme.com", task_id, NO)
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "ALREADY_VOTED"
    assert (await acme.row(task_id))["version"] == version
    assert [v["approved"] for v in await acme.vote_rows(task_id)] == [True]


async def test_the_requester_cannot_approve(acme: Company) -> None:
    # Olga (an operator) asks through an agent key she made: the key's owner never counts.
    async with acme.as_user("olga@acme.com") as olga:
        made = await olga.post("/api/admin/agent-keys", json={"name": "olga's bot"})
        assert made.status_code == 201, made.text
        async with acme.client() as agent:
            agent.headers["Authorization"] = f"Bearer {made.json()['key']}"
            task_id = await acme.create(agent, **FINANCE_3)
        refused = await olga.post(f"/api/tasks/{task_id}/complete", json=YES)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "REQUESTER_CANNOT_APPROVE"
    assert await acme.vote_rows(task_id) == []
    # A task the admin token asked for: the token is one person and does not count either.
    own = await acme.create(**FINANCE_3)
    refused = await acme.admin.post(f"/api/tasks/{own}/complete", json=YES)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "REQUESTER_CANNOT_APPROVE"


async def test_any_rejects_the_first_rejection_decides(acme: Company) -> None:
    task_id = await acme.create(**FINANCE_3)
    assert (await vote(acme, "bob@acme.com", task_id, YES)).status_code == 200
    rejected = await vote(acme, "carol@acme.com", task_id, NO)
    assert rejected.status_code == 200, rejected.text
    view = rejected.json()
    assert view["status"] == "completed"
    assert view["response"]["approved"] is False
    assert view["completed_by_email"] == "carol@acme.com"
    assert [a["approved"] for a in view["approvals"]] == [True, False]


async def test_majority_needs_as_many_rejections_as_approvals(acme: Company) -> None:
    task_id = await acme.create(
        approvers=["role:finance", "alice@acme.com", "rita@acme.com"],
        approvals_required=2,
        rejection_policy="majority",
    )
    first_no = await vote(acme, "bob@acme.com", task_id, NO)
    assert first_no.json()["status"] != "completed", first_no.text
    yes = await vote(acme, "alice@acme.com", task_id, YES)
    assert yes.json()["status"] != "completed", yes.text
    second_no = await vote(acme, "carol@acme.com", task_id, NO)
    assert second_no.status_code == 200, second_no.text
    assert second_no.json()["status"] == "completed"
    assert second_no.json()["response"]["approved"] is False
    assert [a["approved"] for a in second_no.json()["approvals"]] == [False, True, False]

    approved = await acme.create(
        approvers=["role:finance", "alice@acme.com"],
        approvals_required=2,
        rejection_policy="majority",
    )
    await vote(acme, "bob@acme.com", approved, NO)
    await vote(acme, "carol@acme.com", approved, YES)
    done = await vote(acme, "alice@acme.com", approved, YES)
    assert done.json()["status"] == "completed", done.text
    assert done.json()["response"]["approved"] is True


async def test_non_approvers_cannot_vote(acme: Company) -> None:
    task_id = await acme.create(assign_to="rita@acme.com", **FINANCE_3)
    refused = await vote(acme, "rita@acme.com", task_id, YES)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "NOT_AN_APPROVER"
    assert await acme.vote_rows(task_id) == []


async def test_votes_after_a_claim_still_count_from_everyone(acme: Company) -> None:
    task_id = await acme.create(**FINANCE_3)
    async with acme.as_user("bob@acme.com") as bob:
        assert (await bob.post(f"/api/tasks/{task_id}/claim")).status_code == 200
    # Another approver's claim of a task in progress takes nothing from Bob.
    async with acme.as_user("carol@acme.com") as carol:
        again = await carol.post(f"/api/tasks/{task_id}/claim")
        assert again.status_code == 200, again.text
        assert again.json()["assigned_to_user_id"] == acme.ids["bob@acme.com"]
        assert (await carol.post(f"/api/tasks/{task_id}/complete", json=YES)).status_code == 200
    done = await vote(acme, "bob@acme.com", task_id, YES)
    assert done.json()["status"] == "completed", done.text


async def test_a_plain_task_shows_no_votes(acme: Company) -> None:
    task_id = await acme.create()
    done = await acme.admin.post(f"/api/tasks/{task_id}/complete", json=YES)
    assert done.status_code == 200, done.text
    assert done.json()["approvals_required"] == 1
    assert done.json()["approvals"] == []
    poll = (await acme.admin.get(f"/api/tasks/{task_id}/poll")).json()
    assert (poll["approvals_required"], poll["approvals"]) == (1, [])
    assert await acme.vote_rows(task_id) == []


async def test_a_task_rejects_once_too_few_approvers_are_left(acme: Company) -> None:
    # Three approvals of four named people, no operators: after two rejections at most two
    # approvals remain possible, so the second rejection decides.
    task_id = await acme.create(
        approvers=["alice@acme.com", "bob@acme.com", "carol@acme.com", "rita@acme.com"],
        operators_may_answer=False,
        approvals_required=3,
        rejection_policy="majority",
    )
    first = await vote(acme, "alice@acme.com", task_id, NO)
    assert first.json()["status"] != "completed", first.text
    second = await vote(acme, "bob@acme.com", task_id, NO)
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "completed"
    assert second.json()["response"]["approved"] is False
    assert [a["approved"] for a in second.json()["approvals"]] == [False, False]
    # With operators allowed to vote, nobody can say how many are left: it stays open.
    open_ended = await acme.create(
        approvers=["alice@acme.com", "bob@acme.com", "carol@acme.com", "rita@acme.com"],
        approvals_required=3,
        rejection_policy="majority",
    )
    await vote(acme, "alice@acme.com", open_ended, NO)
    still = await vote(acme, "bob@acme.com", open_ended, NO)
    assert still.json()["status"] != "completed", still.text
