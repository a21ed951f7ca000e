"""A vote reads the task's votes once: the write that records it checks "voted already"
against the same list it counts, rather than reading the votes a second time (one read
less per vote, and the check and the count cannot see two different lists). Counted on
the statements the server sends to the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from tests.policies._people import Company, company

YES = {"response": {"approved": True}}


@pytest.fixture
async def acme(database_url: str) -> AsyncIterator[Company]:
    async with company(database_url) as made:
        yield made


@contextmanager
def votes_reads(acme: Company) -> Iterator[list[str]]:
    """The SELECTs on ``task_votes`` the server runs inside the block."""
    seen: list[str] = []
    engine = acme.app.state.ctx.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        flat = " ".join(statement.split()).lower()
        if flat.startswith("select") and "from task_votes" in flat:
            seen.append(flat)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_each_vote_reads_the_votes_once(acme: Company) -> None:
    task_id = await acme.create(approvers=["role:finance", "alice@acme.com"], approvals_required=2)
    for email, decides in (("bob@acme.com", False), ("carol@acme.com", True)):
        async with acme.as_user(email) as who:
            with votes_reads(acme) as reads:
                voted = await who.post(f"/api/tasks/{task_id}/complete", json=YES)
        assert voted.status_code == 200, voted.text
        assert (voted.json()["status"] == "completed") is decides
        assert len(reads) == 1, reads
    assert [r.approved for r in await acme.vote_rows(task_id)] == [True, True]


async def test_a_second_vote_is_refused_after_one_read(acme: Company) -> None:
    task_id = await acme.create(approvers=["role:finance", "alice@acme.com"], approvals_required=2)
    async with acme.as_user("bob@acme.com") as bob:
        assert (await bob.post(f"/api/tasks/{task_id}/complete", json=YES)).status_code == 200
        with votes_reads(acme) as reads:
            again = await bob.post(f"/api/tasks/{task_id}/complete", json=YES)
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "ALREADY_VOTED"
    assert len(reads) == 1, reads
    assert len(await acme.vote_rows(task_id)) == 1
