"""The task lifecycle: which status may follow which, and the one way to change it.

Every status change anywhere in the server (API, dashboard, Slack, email, the timeout
scheduler, verifiers) goes through :func:`transition`: a compare-and-set on the task row,
an audit row with the true from/to status, the actor and the channel, and the outbox rows
that announce the change, all on the caller's connection, so in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._wire import TERMINAL_STATUSES, TaskStatus
from awaithumans.server.db.models import AuditRow, OutboxRow, TaskRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import Principal
from awaithumans.server.services.events import terminal_rows, verify_rows
from awaithumans.server.services.replicas import announce

S = TaskStatus

# The whole state machine. A status absent from the keys has no way out (terminal).
ALLOWED: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    S.CREATED: frozenset(
        {S.NOTIFIED, S.ASSIGNED, S.IN_PROGRESS, S.SUBMITTED, S.COMPLETED, S.TIMED_OUT, S.CANCELLED}
    ),
    S.NOTIFIED: frozenset(
        {S.ASSIGNED, S.IN_PROGRESS, S.SUBMITTED, S.COMPLETED, S.TIMED_OUT, S.CANCELLED}
    ),
    S.ASSIGNED: frozenset({S.IN_PROGRESS, S.SUBMITTED, S.COMPLETED, S.TIMED_OUT, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.SUBMITTED, S.COMPLETED, S.TIMED_OUT, S.CANCELLED}),
    # A submitted answer waits for its verifier, which accepts, rejects or gives up.
    S.SUBMITTED: frozenset(
        {S.COMPLETED, S.REJECTED, S.VERIFICATION_EXHAUSTED, S.TIMED_OUT, S.CANCELLED}
    ),
    # After a rejection the human answers again.
    S.REJECTED: frozenset({S.IN_PROGRESS, S.SUBMITTED, S.TIMED_OUT, S.CANCELLED}),
}

# Statuses in which a human may still answer or claim.
ANSWERABLE = frozenset({S.CREATED, S.NOTIFIED, S.ASSIGNED, S.IN_PROGRESS, S.REJECTED})


class Channel(StrEnum):
    """Where a change came from; recorded on every audit row."""

    API = "api"
    DASHBOARD = "dashboard"
    SLACK = "slack"
    EMAIL = "email"
    SCHEDULER = "scheduler"
    VERIFIER = "verifier"
    SYSTEM = "system"


def can_move(current: TaskStatus, target: TaskStatus) -> bool:
    return target in ALLOWED.get(current, frozenset())


def is_terminal(status: TaskStatus) -> bool:
    return status in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class Moved:
    """A transition that happened; ``task`` is the task as it is now."""

    task: TaskRecord
    from_status: TaskStatus
    outbox_rows: int = 0

    @property
    def task_id(self) -> str:
        return self.task.id

    @property
    def to_status(self) -> TaskStatus:
        return self.task.status

    @property
    def version(self) -> int:
        return self.task.version


@dataclass(frozen=True, slots=True)
class Refused:
    """A transition that could not happen: the task is missing, in another status, or the
    caller's ``check`` said no (``reason`` is its code)."""

    task_id: str
    current: TaskStatus | None
    reason: str | None = None
    task: TaskRecord | None = None


# A precondition on the current task: returns a refusal code, or None to go ahead.
Check = Callable[[TaskRecord], str | None]


async def transition(
    conn: AsyncConnection,
    task_id: str,
    *,
    to: TaskStatus,
    action: str,
    actor: Principal,
    channel: Channel,
    allowed_from: frozenset[TaskStatus] | None = None,
    values: Mapping[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
    check: Check | None = None,
    engines: frozenset[str] = frozenset(),
) -> Moved | Refused:
    """Move one task to ``to`` if the state machine (and ``allowed_from``) permit it.

    The read and the compare-and-set run on the caller's connection; the update only lands
    if nobody changed the task in between (``status`` and ``version`` both still match).
    """
    while True:
        found = (
            (await conn.execute(select(TaskRow).where(TaskRow.id == task_id)))
            .mappings()
            .one_or_none()
        )
        if found is None:
            return Refused(task_id, None)
        task = TaskRecord.from_row(found)
        current = task.status
        if not can_move(current, to) or (allowed_from is not None and current not in allowed_from):
            return Refused(task_id, current, task=task)
        if check is not None and (reason := check(task)) is not None:
            return Refused(task_id, current, reason, task=task)
        now = utcnow()
        new_values = {"status": to.value, "version": task.version + 1, "updated_at": now}
        if values:
            new_values.update(values)
        result = await conn.execute(
            update(TaskRow)
            .where(
                TaskRow.id == task_id,
                TaskRow.status == current.value,
                TaskRow.version == task.version,
            )
            .values(**new_values)
        )
        if result.rowcount == 1:
            break
        # Another process changed the task between our read and our write. Decide again
        # on the row as it is now, as if our call had come second: the move may still be
        # allowed (claimed -> answered), or be refused with the status that won. Each
        # retry means another writer made progress, so this ends.
    await conn.execute(
        insert(AuditRow).values(
            task_id=task_id,
            at=now,
            action=action,
            from_status=current.value,
            to_status=to.value,
            actor_type=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label,
            channel=channel.value,
            detail=detail,
        )
    )
    moved = task.with_values(new_values)
    if is_terminal(to):
        events = terminal_rows(moved, engines=engines)
    elif to is S.SUBMITTED:
        # An answer under verification always has its verification job, from this commit.
        events = verify_rows(moved)
    else:
        events = []
    if events:
        await conn.execute(insert(OutboxRow), events)
    await announce(conn, task_id, moved.version)
    return Moved(moved, current, len(events))


async def annotate(
    conn: AsyncConnection,
    task_id: str,
    *,
    status: TaskStatus,
    action: str,
    actor: Principal,
    channel: Channel,
    values: Mapping[str, Any],
    detail: dict[str, Any] | None = None,
    audited: bool = True,
) -> Moved | Refused:
    """Change a task's fields while it stays in ``status`` (a verifier's provider failing).

    The same compare-and-set as :func:`transition` (the version moves, so live pages and
    replicas see the change), an audit row from ``status`` to ``status`` when ``audited``,
    and no outbox rows. Refused once the task has left ``status``.
    """
    while True:
        found = (
            (await conn.execute(select(TaskRow).where(TaskRow.id == task_id)))
            .mappings()
            .one_or_none()
        )
        if found is None:
            return Refused(task_id, None)
        task = TaskRecord.from_row(found)
        if task.status is not status:
            return Refused(task_id, task.status, task=task)
        now = utcnow()
        new_values = {**values, "version": task.version + 1, "updated_at": now}
        result = await conn.execute(
            update(TaskRow)
            .where(
                TaskRow.id == task_id,
                TaskRow.status == status.value,
                TaskRow.version == task.version,
            )
            .values(**new_values)
        )
        if result.rowcount == 1:
            break
    if audited:
        await conn.execute(
            insert(AuditRow).values(
                audit_values(
                    task_id,
                    action=action,
                    from_status=status,
                    to_status=status,
                    actor=actor,
                    channel=channel,
                    detail=detail,
                )
            )
        )
    moved = task.with_values(new_values)
    await announce(conn, task_id, moved.version)
    return Moved(moved, status)


def audit_values(
    task_id: str,
    *,
    action: str,
    from_status: TaskStatus | None,
    to_status: TaskStatus,
    actor: Principal,
    channel: Channel,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An audit row's values, for callers that insert rows in bulk (task creation)."""
    return {
        "task_id": task_id,
        "at": utcnow(),
        "action": action,
        "from_status": from_status.value if from_status else None,
        "to_status": to_status.value,
        "actor_type": actor.kind,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "channel": channel.value,
        "detail": detail,
    }
