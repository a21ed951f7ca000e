"""Two candidates of a first-to-claim task act at once through two server processes on one
PostgreSQL: exactly one takes it (the compare-and-set of the claim), the other is refused
(403 saying who took it, or 409 once the winner's answer closed it), and the audit trail
holds one taking move."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from awaithumans.core import Ask
from awaithumans.server.db.models import AuditRow
from awaithumans.testing import ServerProcess
from tests._api import Decision, Refund, add_user, admin
from tests.policies._world import PASSWORD

ROUNDS = 6
TAKING = ("claimed", "completed")


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    first = ServerProcess(database_url=postgres_url, workdir=tmp_path / "a")
    second = ServerProcess(
        database_url=postgres_url,
        workdir=tmp_path / "b",
        payload_key=first.payload_key,
        admin_token=first.admin_token,
    )
    for proc in (first, second):
        proc.workdir.mkdir()
    with first, second:
        yield first, second


async def signed_in(server: ServerProcess, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=30)
    got = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert got.status_code == 200, got.text
    return client


async def offered_task(server: ServerProcess) -> str:
    body = Ask(
        task="Refund $42 for ord_7?",
        payload_schema=Refund,
        payload=Refund(order_id="ord_7", amount_usd=42),
        response_schema=Decision,
        timeout_seconds=900,
        idempotency_key=f"race-{uuid.uuid4().hex}",
        assign_to=["ana@acme.com", "ben@acme.com"],
    ).request()
    async with admin(server) as http:
        made = await http.post("/api/tasks", json=body.model_dump(mode="json", exclude_none=True))
    assert made.status_code == 201, made.text
    assert made.json()["assigned_to_user_id"] is None
    return str(made.json()["id"])


async def test_two_candidates_at_once_on_two_replicas(
    replicas: tuple[ServerProcess, ServerProcess], postgres_url: str
) -> None:
    first, second = replicas
    ana_id = await add_user(first, "Ana", email="ana@acme.com")
    ben_id = await add_user(first, "Ben", email="ben@acme.com")
    names = {ana_id: "Ana", ben_id: "Ben"}
    ana, ben = await signed_in(first, "ana@acme.com"), await signed_in(second, "ben@acme.com")
    engine = create_async_engine(postgres_url)
    try:
        for round_ in range(ROUNDS):
            task_id = await offered_task(first)
            # Claims both ways; in the last rounds Ben answers outright (answering takes it).
            ben_does = (
                ("claim", None)
                if round_ < ROUNDS - 2
                else ("complete", {"response": {"approved": True}})
            )
            got = await asyncio.gather(
                ana.post(f"/api/tasks/{task_id}/claim"),
                ben.post(f"/api/tasks/{task_id}/{ben_does[0]}", json=ben_does[1]),
            )
            won = [r for r in got if r.status_code == 200]
            lost = [r for r in got if r.status_code != 200]
            assert len(won) == 1, [r.text for r in got]
            assert len(lost) == 1, [r.text for r in got]
            winner = won[0].json()["assigned_to_user_id"]
            assert winner in names
            refusal = lost[0].json()
            if won[0].json()["status"] == "completed":
                assert (lost[0].status_code, refusal["error"]) == (409, "TASK_ALREADY_TERMINAL")
            else:
                assert (lost[0].status_code, refusal["error"]) == (403, "NOT_ASSIGNED_TO_YOU")
                assert refusal["message"] == f"{names[winner]} took this task."
            async with engine.connect() as conn:
                moves = (
                    await conn.execute(
                        select(AuditRow.action, AuditRow.actor_id).where(
                            AuditRow.task_id == task_id, AuditRow.action.in_(TAKING)
                        )
                    )
                ).all()
            assert [(m.action, m.actor_id) for m in moves] in (
                [("claimed", winner)],
                [("completed", winner)],
            )
    finally:
        await ana.aclose()
        await ben.aclose()
        await engine.dispose()
