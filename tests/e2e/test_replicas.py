"""Two server processes on one PostgreSQL: an answer given to one wakes a wait on the other."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from pydantic import BaseModel

from awaithumans import await_human
from awaithumans.testing import ServerProcess


class Q(BaseModel):
    text: str


class A(BaseModel):
    ok: bool


async def test_answer_on_one_replica_wakes_a_poll_on_the_other(
    postgres_url: str, tmp_path: Path
) -> None:
    first = ServerProcess(database_url=postgres_url, workdir=tmp_path / "a")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first.start()
    second = ServerProcess(
        database_url=postgres_url,
        workdir=tmp_path / "b",
        payload_key=first.payload_key,
        admin_token=first.admin_token,
    )
    second.start()
    try:
        waiter = asyncio.create_task(
            await_human(
                task="Replicas?",
                payload_schema=Q,
                payload=Q(text="x"),
                response_schema=A,
                timeout_seconds=600,
                idempotency_key="replica-1",
                server_url=first.url,
                api_key=first.admin_token,
            )
        )
        headers = {"Authorization": f"Bearer {first.admin_token}"}
        async with (
            httpx.AsyncClient(base_url=second.url, headers=headers) as other,
            httpx.AsyncClient(base_url=first.url, headers=headers) as origin,
        ):
            deadline = time.monotonic() + 10
            task_id = None
            while time.monotonic() < deadline:
                polls = (await origin.get("/api/health")).json()["waiting_polls"]
                items = (await other.get("/api/tasks")).json()["items"]
                if items and polls:
                    task_id = items[0]["id"]
                    break
                await asyncio.sleep(0.02)
            assert task_id is not None
            answered_at = time.monotonic()
            resp = await other.post(
                f"/api/tasks/{task_id}/complete", json={"response": {"ok": True}}
            )
            assert resp.status_code == 200
            assert await asyncio.wait_for(waiter, 10) == A(ok=True)
            # Woken by NOTIFY, not by the 25 s re-poll.
            assert time.monotonic() - answered_at < 2.0
    finally:
        first.close()
        second.close()
