"""Concurrent votes from two replicas on one PostgreSQL: the N-th approval completes once.

Two apps (each its own writer and connection pool, as two server processes have) share a
database and a payload key; the last two approvals of each task arrive at once, one
through each. Exactly one completes the task, the other is told it is already completed,
and the task holds exactly N votes and one completion. The same person voting through
both at once counts once.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from sqlalchemy import func, select

from awaithumans.server.db.models import AuditRow
from tests._app_fixtures import make_settings, running_app
from tests.policies._people import Company, company
from tests.policies._world import PASSWORD

YES = {"response": {"approved": True}}
ROUNDS = 8


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[Company, httpx.AsyncClient]]:
    key = secrets.token_hex(32)
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(company(postgres_url, payload_key=key))
        other, _admin = await stack.enter_async_context(
            running_app(make_settings(postgres_url, payload_key=key))
        )
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=other), base_url="http://testserver"
            )
        )
        yield first, client


async def sign_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    got = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert got.status_code == 200, got.text
    # Each request names its person: one client signs several people in.
    cookie = got.cookies["ah_session"]
    client.cookies.clear()
    return {"Cookie": f"ah_session={cookie}"}


async def completions(acme: Company, task_id: str) -> int:
    async with acme.app.state.ctx.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(AuditRow)
                    .where(AuditRow.task_id == task_id, AuditRow.action == "completed")
                )
            ).scalar_one()
        )


async def test_the_deciding_approval_completes_exactly_once(
    replicas: tuple[Company, httpx.AsyncClient],
) -> None:
    acme, other = replicas
    async with acme.client() as here:
        alice = await sign_in(here, "alice@acme.com")
        bob = await sign_in(here, "bob@acme.com")
        carol = await sign_in(other, "carol@acme.com")
        for _ in range(ROUNDS):
            task_id = await acme.create(
                approvers=["role:finance", "alice@acme.com"], approvals_required=2
            )
            url = f"/api/tasks/{task_id}/complete"
            assert (await here.post(url, json=YES, headers=alice)).status_code == 200
            one, two = await asyncio.gather(
                here.post(url, json=YES, headers=bob), other.post(url, json=YES, headers=carol)
            )
            codes = sorted([one.status_code, two.status_code])
            assert codes == [200, 409], (one.text, two.text)
            loser = one if one.status_code == 409 else two
            assert loser.json()["error"] == "TASK_ALREADY_TERMINAL"
            winner = one if one.status_code == 200 else two
            assert winner.json()["status"] == "completed"
            assert len(winner.json()["approvals"]) == 2
            assert len(await acme.vote_rows(task_id)) == 2
            assert await completions(acme, task_id) == 1


async def test_one_person_voting_through_both_replicas_counts_once(
    replicas: tuple[Company, httpx.AsyncClient],
) -> None:
    acme, other = replicas
    async with acme.client() as here:
        bob_here = await sign_in(here, "bob@acme.com")
        bob_there = await sign_in(other, "bob@acme.com")
        for _ in range(ROUNDS):
            task_id = await acme.create(
                approvers=["role:finance", "alice@acme.com"], approvals_required=2
            )
            url = f"/api/tasks/{task_id}/complete"
            one, two = await asyncio.gather(
                here.post(url, json=YES, headers=bob_here),
                other.post(url, json=YES, headers=bob_there),
            )
            assert sorted([one.status_code, two.status_code]) == [200, 409], (one.text, two.text)
            loser = one if one.status_code == 409 else two
            assert loser.json()["error"] == "ALREADY_VOTED"
            assert len(await acme.vote_rows(task_id)) == 1
            assert (await acme.row(task_id))["status"] != "completed"
