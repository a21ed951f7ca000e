"""The answer path's checks are made in one place: what :func:`answers.answer_refusal_of`
predicts (Slack and the mailed answer page ask it before showing buttons) is exactly what
:func:`answers.answer` then refuses with (code, status, message, who took it), for an
agent key, a finished task, a non-approver, a candidate who lost the task, the requester
and a second vote; and a person it lets through is let through. Nothing a refusal touched
changed. In-process app on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from awaithumans.core._codes import ErrorCode
from awaithumans.server.principals import Principal
from awaithumans.server.services import answers
from awaithumans.server.services.directory import active_user, as_principal
from awaithumans.server.services.lifecycle import Channel
from tests.policies._people import Company, company

YES = {"approved": True}
FINANCE_2: dict[str, Any] = {
    "approvers": ["role:finance", "alice@acme.com"],
    "approvals_required": 2,
}


@pytest.fixture
async def acme(database_url: str) -> AsyncIterator[Company]:
    async with company(database_url) as made:
        yield made


async def person(acme: Company, email: str) -> Principal:
    found = await active_user(acme.app.state.ctx.engine, acme.ids[email])
    assert found is not None
    return as_principal(found)


async def refused_alike(
    acme: Company, who: Principal, task_id: str, code: ErrorCode
) -> answers.Refusal:
    """Both calls refuse ``who`` on ``task_id`` with ``code``, the same way; nothing moved."""
    ctx = acme.app.state.ctx
    version = (await acme.row(task_id))["version"]
    task = await answers.load_task(ctx, task_id)
    assert task is not None
    predicted = await answers.answer_refusal_of(ctx, who, task)
    given = await answers.answer(ctx, task_id, who, Channel.API, YES)
    assert isinstance(predicted, answers.Refusal), predicted
    assert predicted.code is code, predicted
    assert given == predicted
    assert (await acme.row(task_id))["version"] == version
    return predicted


async def test_an_agent_key_is_refused_alike(acme: Company) -> None:
    made = await acme.admin.post("/api/admin/agent-keys", json={"name": "bot"})
    assert made.status_code == 201, made.text
    async with acme.client() as agent:
        agent.headers["Authorization"] = f"Bearer {made.json()['key']}"
        task_id = await acme.create(agent)
    bot = Principal(kind="agent", id=made.json()["id"], label="bot")
    refusal = await refused_alike(acme, bot, task_id, ErrorCode.FORBIDDEN)
    assert refusal.status_code == 403


async def test_a_finished_task_and_a_non_approver_are_refused_alike(acme: Company) -> None:
    done = await acme.create()
    completed = await acme.admin.post(f"/api/tasks/{done}/complete", json={"response": YES})
    assert completed.status_code == 200, completed.text
    olga = await person(acme, "olga@acme.com")
    finished = await refused_alike(acme, olga, done, ErrorCode.TASK_ALREADY_TERMINAL)
    assert (finished.status_code, finished.current) == (409, completed.json()["status"])

    rita = await person(acme, "rita@acme.com")
    theirs = await acme.create(assign_to="rita@acme.com", **FINANCE_2)
    not_listed = await refused_alike(acme, rita, theirs, ErrorCode.NOT_AN_APPROVER)
    assert not_listed.status_code == 403


async def test_a_candidate_who_lost_the_task_is_told_who_took_it_alike(acme: Company) -> None:
    task_id = await acme.create(assign_to=["alice@acme.com", "rita@acme.com"])
    async with acme.as_user("alice@acme.com") as alice:
        taken = await alice.post(f"/api/tasks/{task_id}/claim")
    assert taken.status_code == 200, taken.text
    rita = await person(acme, "rita@acme.com")
    lost = await refused_alike(acme, rita, task_id, ErrorCode.NOT_ASSIGNED_TO_YOU)
    assert lost.taken_by == "Alice Approver"
    assert lost.message == "Alice Approver took this task."


async def test_the_requester_and_a_second_vote_are_refused_alike(acme: Company) -> None:
    # Olga (an operator) asks through her own key: her vote never counts.
    async with acme.as_user("olga@acme.com") as olga_api:
        key = await olga_api.post("/api/admin/agent-keys", json={"name": "olga's bot"})
    assert key.status_code == 201, key.text
    async with acme.client() as agent:
        agent.headers["Authorization"] = f"Bearer {key.json()['key']}"
        task_id = await acme.create(agent, **FINANCE_2)
    olga = await person(acme, "olga@acme.com")
    requester = await refused_alike(acme, olga, task_id, ErrorCode.REQUESTER_CANNOT_APPROVE)
    assert requester.status_code == 403

    ctx = acme.app.state.ctx
    bob = await person(acme, "bob@acme.com")
    task = await answers.load_task(ctx, task_id)
    assert task is not None
    assert await answers.answer_refusal_of(ctx, bob, task) is None
    first = await answers.answer(ctx, task_id, bob, Channel.API, YES)
    assert isinstance(first, answers.Done), first
    assert [a.email for a in first.approvals or []] == ["bob@acme.com"]
    again = await refused_alike(acme, bob, task_id, ErrorCode.ALREADY_VOTED)
    assert again.status_code == 409
    assert len(await acme.vote_rows(task_id)) == 1
