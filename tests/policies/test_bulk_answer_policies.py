"""Bulk answer under approval policies: each task's own rules hold inside one bulk answer.

An operator answers three opened tasks of one form at once: a plain one completes, one that
needs two approvals counts the vote ("1 of 2"), and one whose approvers exclude operators
is refused with NOT_AN_APPROVER. In-process app on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.policies._bulk_world import APPROVAL, SAM, with_sam
from tests.policies.test_bulk_answer import (
    OPS,
    RITA,
    World,
    answer,
    choose,
    open_tasks,
    results_of,
)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with with_sam(database_url) as made:
        yield made


async def test_each_tasks_policy_holds_inside_one_bulk_answer(world: World) -> None:
    unassigned: dict[str, Any] = {"assign_to": None}
    plain = await world.create("Plain", APPROVAL, **unassigned)
    two_of = await world.create(
        "Needs two", APPROVAL, approvers=[OPS, RITA, SAM], approvals_required=2, **unassigned
    )
    not_ops = await world.create(
        "Sam only", APPROVAL, approvers=[SAM], operators_may_answer=False, **unassigned
    )
    ids = [plain, two_of, not_ops]
    async with world.signed_in(OPS) as ops:
        await open_tasks(ops, *ids)
        chosen = await choose(ops, *ids)
        assert chosen.status_code == 200, chosen.text
        done = await answer(ops, chosen, ids, **{"f.approved": "true"})
    assert done.status_code == 200, done.text
    results = results_of(done.text)
    assert results[plain] == ("answered", None, "")
    assert results[two_of] == (
        "recorded",
        None,
        "Your vote was counted: 1 of 2 approvals so far.",
    )
    outcome, code, _reason = results[not_ops]
    assert (outcome, code) == ("refused", "NOT_AN_APPROVER")

    assert (await world.task(plain))["status"] == "completed"
    voted = await world.task(two_of)
    assert voted["status"] != "completed"
    assert [a["email"] for a in voted["approvals"]] == [OPS]
    assert (await world.task(not_ops))["status"] != "completed"
    # The vote is an audit row of its own, by the operator on the dashboard.
    votes = [a for a in await world.audit(two_of) if a["action"] == "vote"]
    assert [(a["actor_id"], a["channel"]) for a in votes] == [(world.users[OPS], "dashboard")]
