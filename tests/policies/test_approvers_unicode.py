"""An approver whose email is not ASCII finds the task in their queue on both databases
(SQLite stores the policy's JSON with the name escaped, PostgreSQL prints it back as UTF-8)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.policies._people import Company, company
from tests.policies._world import add_people, dashboard_sign_in

ZOE = "zoë@acme.com"


@pytest.fixture
async def acme(database_url: str) -> AsyncIterator[Company]:
    async with company(database_url) as made:
        yield made


async def test_a_non_ascii_approver_sees_the_task_in_their_queue(acme: Company) -> None:
    await add_people(acme.admin, [(ZOE, "Zoë", False)])
    task_id = await acme.create(assign_to="rita@acme.com", approvers=[ZOE])
    async with acme.client() as zoe:
        await dashboard_sign_in(zoe, ZOE)
        queue = await zoe.get("/")
    assert queue.status_code == 200
    assert task_id in queue.text
