"""Bulk answer by a listed approver: a task assigned to someone else, whose approvers name
this reviewer, is theirs to answer in bulk as it is on its own page (and one whose approvers
do not name them stays as missing as an unknown task). In-process app on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.policies._bulk_world import APPROVAL, SAM, with_sam
from tests.policies.test_bulk_answer import (
    World,
    answer,
    choose,
    hidden_ids,
    open_tasks,
    results_of,
)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with with_sam(database_url) as made:
        yield made


async def test_a_listed_approver_answers_tasks_assigned_to_someone_else(world: World) -> None:
    # Both assigned to Rita (World.create's default); Sam is named only as an approver.
    first = await world.create("Sam decides 1", APPROVAL, approvers=[SAM])
    second = await world.create("Sam decides 2", APPROVAL, approvers=[SAM])
    not_his = await world.create("Rita's own", APPROVAL)
    ids = [first, second]
    async with world.signed_in(SAM) as sam:
        await open_tasks(sam, *ids)
        chosen = await choose(sam, *ids)
        assert chosen.status_code == 200, chosen.text
        assert hidden_ids(chosen.text) == ids
        assert 'name="f.approved"' in chosen.text
        done = await answer(sam, chosen, [*ids, not_his], **{"f.approved": "true"})
    assert done.status_code == 200, done.text
    results = results_of(done.text)
    assert results[first] == ("answered", None, "")
    assert results[second] == ("answered", None, "")
    assert results[not_his][:2] == ("refused", "TASK_NOT_FOUND")
    for task_id in ids:
        task = await world.task(task_id)
        assert task["status"] == "completed"
        assert task["completed_by_email"] == SAM
    assert (await world.task(not_his))["status"] != "completed"
