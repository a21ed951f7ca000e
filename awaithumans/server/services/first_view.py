"""Who opened which task, and when a person first opened it (time to first view).

Recorded where a person actually sees a task: the dashboard's task page, the Slack modal,
the email answer page. Not when an agent reads it through the API, and not when an
operator merely lists the queue.

This is telemetry, not a step of the task: it goes straight to the rows, with no lifecycle
move, no version bump, no audit row and no change notice (a long-poll has nothing to wake
for). ``tasks.first_viewed_at`` is set by ``UPDATE … WHERE first_viewed_at IS NULL``, so the
first view wins however many replicas record one at once, and a later view changes nothing.
``task_views`` keeps each person's first view (an insert that ignores an existing row, on
both databases); the bulk answer asks it whether a reviewer opened every task they answer.

Only an open task counts: a view after the answer says nothing about how long the task
waited for someone to look.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import OPEN_TASK_CONDITION, TaskRow, TaskViewRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import Principal
from awaithumans.server.services.writer import Write


class RecordView(Write[bool]):
    """Insert (task, person) into ``task_views`` unless there, and set the task's first view
    unless set; True when this was the task's first view by anyone."""

    def __init__(self, task_id: str, user_id: str) -> None:
        self.task_id = task_id
        self.user_id = user_id

    async def apply(self, conn: AsyncConnection) -> bool:
        at = utcnow()
        insert_fn = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        await conn.execute(
            insert_fn(TaskViewRow)
            .values(task_id=self.task_id, user_id=self.user_id, first_at=at)
            .on_conflict_do_nothing(index_elements=["task_id", "user_id"])
        )
        first = await conn.execute(
            update(TaskRow)
            .where(
                TaskRow.id == self.task_id,
                TaskRow.first_viewed_at.is_(None),
                text(OPEN_TASK_CONDITION),
            )
            .values(first_viewed_at=at)
        )
        return bool(first.rowcount)


async def has_viewed(ctx: ServerContext, task_id: str, user_id: str) -> bool:
    async with ctx.reader.connect() as conn:
        found = await conn.scalar(
            select(TaskViewRow.first_at).where(
                TaskViewRow.task_id == task_id, TaskViewRow.user_id == user_id
            )
        )
    return found is not None


async def viewed_of(ctx: ServerContext, task_ids: Iterable[str], user_id: str) -> set[str]:
    """Which of ``task_ids`` ``user_id`` has opened (one query on the primary key)."""
    ids = list(task_ids)
    if not ids:
        return set()
    async with ctx.reader.connect() as conn:
        found = await conn.scalars(
            select(TaskViewRow.task_id).where(
                TaskViewRow.user_id == user_id, TaskViewRow.task_id.in_(ids)
            )
        )
        return set(found)


async def record_view(ctx: ServerContext, task: TaskRecord, who: Principal) -> None:
    """Note that the person ``who`` opened ``task`` (nothing for agents, the admin token or
    the server, nor for a finished task).

    Cheap on the common path: a task already viewed, by this person before, costs one
    primary-key read and no write.
    """
    if who.kind != "user" or task.status.is_terminal:
        return
    if task.first_viewed_at is not None and await has_viewed(ctx, task.id, who.id):
        return
    await ctx.writer.submit(RecordView(task.id, who.id))
