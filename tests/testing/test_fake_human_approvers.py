"""The fake human and tasks only their approvers may answer (``operators_may_answer=False``).

Its operators are refused there (NOT_AN_APPROVER), so it acts as the people the task lists:
an email's directory user (created if absent), a fake member of a listed role or pool, as
many distinct ones as ``approvals_required`` asks; ``as_=`` picks whom, and someone the task
does not allow is refused by the server and fails the test naming the task. The in-process
server runs on SQLite and PostgreSQL; the agent is the plain blocking SDK.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from awaithumans import approvals_of, await_human_sync
from awaithumans.core._errors import TaskCancelledError
from awaithumans.testing.fake_human import FakeHuman, FakeHumanError

CFO = "cfo@acme.com"
ONLY_APPROVERS = {"operators_may_answer": False}


class Payout(BaseModel):
    vendor: str
    amount: int


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


def ask_payout(amount: int, **policy: Any) -> Decision:
    decision: Decision = await_human_sync(
        task=f"Pay the vendor ${amount}?",
        payload_schema=Payout,
        payload=Payout(vendor=f"v-{uuid.uuid4().hex[:6]}", amount=amount),
        response_schema=Decision,
        timeout_seconds=3600,
        **policy,
    )
    return decision


@pytest.fixture
def human(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHuman]:
    """A fake human whose in-process server uses SQLite or PostgreSQL. A test that expects
    a refusal closes it itself, inside ``pytest.raises``; closing again does nothing."""
    with FakeHuman(settings={"database_url": database_url}) as made:
        for name, value in made.env().items():
            monkeypatch.setenv(name, value)
        yield made


def admin_get(human: FakeHuman, path: str) -> Any:
    got = httpx.get(f"{human.url}{path}", headers={"Authorization": f"Bearer {human.admin_token}"})
    assert got.status_code == 200, got.text
    return got.json()


def directory(human: FakeHuman) -> dict[str, dict[str, Any]]:
    """The server's users by email, as its admin API lists them."""
    return {u["email"]: u for u in admin_get(human, "/api/admin/users")}


def audit(human: FakeHuman, task_id: str) -> list[tuple[str, str | None]]:
    entries = admin_get(human, f"/api/tasks/{task_id}/audit")
    return [(e["action"], e.get("actor_label")) for e in entries]


def test_an_approver_only_task_is_answered_as_the_listed_email(human: FakeHuman) -> None:
    human.answer(title_contains="vendor", with_=Decision(approved=True, notes="in budget"))
    decision = ask_payout(900, approvers=[CFO, "role:finance"], **ONLY_APPROVERS)
    assert decision == Decision(approved=True, notes="in budget")
    (asked,) = human.asked
    assert (asked.outcome, asked.answered_by) == ("answered", (CFO,))
    # The person exists in the directory now: a plain user, not an operator.
    cfo = directory(human)[CFO]
    assert (cfo["is_operator"], cfo["is_active"]) == (False, True)
    assert audit(human, asked.task_id)[-1] == ("completed", CFO)


def test_a_role_approver_is_a_fake_member_of_that_role(human: FakeHuman) -> None:
    human.reject(title_contains="vendor", notes="over the limit")
    decision = ask_payout(5000, approvers=["role:finance"], **ONLY_APPROVERS)
    assert decision == Decision(approved=False, notes="over the limit")
    (asked,) = human.asked
    assert asked.outcome == "rejected"
    (member,) = asked.answered_by
    assert directory(human)[member]["roles"] == ["finance"]


def test_m_of_n_votes_come_from_distinct_listed_people(human: FakeHuman) -> None:
    human.answer(title_contains="vendor", with_=Decision(approved=True))
    decision = ask_payout(
        20000,
        approvers=[CFO, "role:finance", "pool:treasury"],
        approvals_required=3,
        **ONLY_APPROVERS,
    )
    assert decision == Decision(approved=True)
    (asked,) = human.asked
    assert len(set(asked.answered_by)) == 3
    assert asked.answered_by[0] == CFO
    users = directory(human)
    voters = [users[email] for email in asked.answered_by]
    assert [(v["roles"], v["pools"]) for v in voters[1:]] == [(["finance"], []), ([], ["treasury"])]
    # The votes the agent sees are theirs, in that order.
    votes = approvals_of(decision)
    assert [(v.email, v.approved) for v in votes] == [(e, True) for e in asked.answered_by]


def test_m_of_n_from_one_role_takes_as_many_members(human: FakeHuman) -> None:
    human.answer(title_contains="vendor", with_=Decision(approved=True))
    decision = ask_payout(7000, approvers=["pool:treasury"], approvals_required=2, **ONLY_APPROVERS)
    asked = human.asked[0]
    assert [v.email for v in approvals_of(decision)] == list(asked.answered_by)
    assert len(set(asked.answered_by)) == 2
    assert all(directory(human)[e]["pools"] == ["treasury"] for e in asked.answered_by)


def test_an_existing_directory_user_is_used_not_duplicated(human: FakeHuman) -> None:
    made = httpx.post(
        f"{human.url}/api/admin/users",
        headers={"Authorization": f"Bearer {human.admin_token}"},
        json={"email": "CFO@acme.com", "display_name": "Carla the CFO"},
    )
    assert made.status_code == 201, made.text
    human.answer(title_contains="vendor", with_=Decision(approved=True))
    ask_payout(100, approvers=[CFO], **ONLY_APPROVERS)
    assert human.asked[0].answered_by == (CFO,)
    users = admin_get(human, "/api/admin/users")
    assert [u["id"] for u in users if u["email"] == CFO] == [made.json()["id"]]


def test_as_names_whom_to_act_as(human: FakeHuman) -> None:
    human.answer(title_contains="vendor", with_=Decision(approved=True), as_="role:finance")
    ask_payout(300, approvers=[CFO, "role:finance"], **ONLY_APPROVERS)
    (member,) = human.asked[0].answered_by
    assert member != CFO
    assert directory(human)[member]["roles"] == ["finance"]
    assert human.asked[0].rule == "answer(title_contains='vendor', as_=['role:finance'])"


def test_as_someone_not_allowed_is_the_servers_refusal_naming_the_task(
    human: FakeHuman,
) -> None:
    human.answer(title_contains="vendor", with_=Decision(approved=True), as_="intern@acme.com")
    with pytest.raises(TaskCancelledError):
        ask_payout(400, approvers=[CFO], **ONLY_APPROVERS)
    (asked,) = human.asked
    assert asked.outcome == "refused"
    assert asked.answered_by == ()
    assert asked.error is not None
    assert "the server refused the answer of intern@acme.com: NOT_AN_APPROVER" in asked.error
    with pytest.raises(FakeHumanError) as failed:
        human.close()
    assert asked.task_id in str(failed.value)
    assert "NOT_AN_APPROVER" in str(failed.value)


def test_as_a_list_votes_in_that_order_then_the_listed_fill_in(human: FakeHuman) -> None:
    human.answer(
        title_contains="vendor",
        with_=Decision(approved=True),
        as_=["role:finance", "role:finance"],
    )
    decision = ask_payout(
        8000, approvers=[CFO, "role:finance"], approvals_required=3, **ONLY_APPROVERS
    )
    asked = human.asked[0]
    first, second, third = asked.answered_by
    assert len({first, second}) == 2  # two distinct members of the role
    assert third == CFO
    assert [v.email for v in approvals_of(decision)] == [first, second, third]


def test_a_bad_as_fails_the_test_saying_why(human: FakeHuman) -> None:
    human.answer(title_contains="vendor", with_=Decision(approved=True), as_="role:Finance")
    with pytest.raises(TaskCancelledError):
        ask_payout(50, approvers=["role:finance"], **ONLY_APPROVERS)
    error = human.asked[0].error
    assert error is not None
    assert "as_='role:Finance'" in error
    assert "not a valid role name" in error
    with pytest.raises(FakeHumanError):
        human.close()


def test_tasks_operators_may_answer_are_still_answered_as_an_operator(
    human: FakeHuman,
) -> None:
    human.answer(title_contains="vendor", with_=Decision(approved=True))
    ask_payout(10)
    ask_payout(20, approvers=[CFO])
    assert [a.answered_by for a in human.asked] == [
        ("fake human (awaithumans.testing)",),
        ("fake human (awaithumans.testing)",),
    ]
    assert CFO not in directory(human)
