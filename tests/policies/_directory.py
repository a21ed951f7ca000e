"""Helpers for the routing and delegation tests: directory users through the admin API, a
task body for ``POST /api/tasks``, and the rows a create wrote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.core import Ask
from awaithumans.server.db.models import AuditRow, TaskRow
from awaithumans.server.security.receipts import chain_hash


class Refund(BaseModel):
    order_id: str


class Decision(BaseModel):
    approved: bool


def task_body(key: str, assign_to: Any = None, **extra: Any) -> dict[str, Any]:
    return (
        Ask(
            task="Refund order?",
            payload_schema=Refund,
            payload=Refund(order_id=key),
            response_schema=Decision,
            timeout_seconds=86_400,
            idempotency_key=key,
            assign_to=assign_to,
            **extra,
        )
        .request()
        .model_dump(mode="json", exclude_none=True)
    )


async def add_user(
    client: httpx.AsyncClient, name: str, *, roles: Sequence[str] = (), pools: Sequence[str] = ()
) -> str:
    made = await client.post(
        "/api/admin/users",
        json={
            "email": f"{name}@acme.com",
            "display_name": name.title(),
            "roles": list(roles),
            "pools": list(pools),
        },
    )
    assert made.status_code == 201, made.text
    uid: str = made.json()["id"]
    return uid


async def create(client: httpx.AsyncClient, key: str, assign_to: Any) -> dict[str, Any]:
    made = await client.post("/api/tasks", json=task_body(key, assign_to))
    assert made.status_code == 201, made.text
    task: dict[str, Any] = made.json()
    return task


async def audit_rows(engine: AsyncEngine, task_id: str) -> list[dict[str, Any]]:
    """The task's audit rows in order, after checking they chain up to its head."""
    async with engine.connect() as conn:
        rows = [
            dict(r)
            for r in (
                await conn.execute(
                    select(AuditRow.__table__)
                    .where(AuditRow.task_id == task_id)
                    .order_by(AuditRow.id)
                )
            ).mappings()
        ]
        head = await conn.scalar(select(TaskRow.audit_head).where(TaskRow.id == task_id))
    previous = None
    for row in rows:
        assert row["chain_hash"] == chain_hash(previous, row), row
        previous = row["chain_hash"]
    assert head == previous
    return rows
