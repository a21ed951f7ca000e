"""What the reminder and escalation tests do over and over: move a task's clock in the
database (from outside the server, as a restart after a long outage would find it), read its
nudge columns, its audit rows and the nudge jobs the outbox holds for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from awaithumans.server.db.models import OutboxRow, TaskRow
from awaithumans.testing import ServerProcess
from tests._api import admin


def async_url(url: str) -> str:
    """The URL with its async driver, as the server picks it."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    return url


@asynccontextmanager
async def database(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(async_url(url))
    try:
        yield engine
    finally:
        await engine.dispose()


async def move_clock(url: str, back: timedelta, task_ids: list[str] | None = None) -> None:
    """Make the tasks (all of them by default) ``back`` older: their creation and their next
    nudge, in one statement per task, as if that much time had passed."""
    async with database(url) as engine, engine.begin() as conn:
        query = select(TaskRow.id, TaskRow.created_at, TaskRow.next_nudge_at)
        if task_ids is not None:
            query = query.where(TaskRow.id.in_(task_ids))
        for row in (await conn.execute(query)).all():
            values: dict[str, Any] = {"created_at": row.created_at - back}
            if row.next_nudge_at is not None:
                values["next_nudge_at"] = row.next_nudge_at - back
            await conn.execute(update(TaskRow).where(TaskRow.id == row.id).values(**values))


@dataclass(frozen=True)
class NudgeState:
    created_at: datetime
    next_nudge_at: datetime | None
    nudges_done: int
    assigned_to_user_id: str | None


async def nudge_state(url: str, task_id: str) -> NudgeState:
    async with database(url) as engine, engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    TaskRow.created_at,
                    TaskRow.next_nudge_at,
                    TaskRow.nudges_done,
                    TaskRow.assigned_to_user_id,
                ).where(TaskRow.id == task_id)
            )
        ).one()
    return NudgeState(row.created_at, row.next_nudge_at, row.nudges_done, row.assigned_to_user_id)


async def nudge_jobs(url: str, task_id: str) -> list[dict[str, Any]]:
    """The outbox rows of the task's reminders and escalations (target and body)."""
    async with database(url) as engine, engine.connect() as conn:
        rows = (
            await conn.execute(
                select(OutboxRow.target, OutboxRow.body)
                .where(OutboxRow.task_id == task_id)
                .order_by(OutboxRow.id)
            )
        ).all()
    return [{"target": r.target, **r.body} for r in rows if r.body.get("nudge")]


async def audit(server: ServerProcess, task_id: str, *actions: str) -> list[dict[str, Any]]:
    """The task's audit rows, only those of ``actions`` when given."""
    async with admin(server) as http:
        got = await http.get(f"/api/tasks/{task_id}/audit")
    assert got.status_code == 200, got.text
    rows: list[dict[str, Any]] = got.json()
    return [r for r in rows if not actions or r["action"] in actions]
