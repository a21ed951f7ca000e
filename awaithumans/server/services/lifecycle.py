"""The task lifecycle: which status may follow which, and the one way to change it.

Every status change anywhere in the server (API, dashboard, Slack, email, the timeout
scheduler, verifiers) goes through :func:`transition`: a compare-and-set on the task row,
an audit row with the true from/to status, the actor and the channel, and the outbox rows
that announce the change, all on the caller's connection, so in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._wire import TERMINAL_STATUSES, TaskStatus
from awaithumans.server.db.models import AuditRow, OutboxRow, TaskRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import Principal
from awaithumans.server.security.receipts import chain_hash
from awaithumans.server.services.events import terminal_rows, verify_rows
from awaithumans.server.services.replicas import announce, announce_many
from awaithumans.server.services.writer import RetryAlone

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
# Values computed from the current task (Move.derive).
Derive = Callable[[TaskRecord], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Move:
    """One requested status change, as :func:`transition_many` takes them.

    Attributes:
        allowed_from: Statuses the move may start from, narrower than the state machine's.
        values: Columns to set besides status, version and updated_at (stored values).
        detail: The audit row's detail.
        check: A precondition on the task as it is when the move is decided.
        derive: More columns to set, computed from the task as it is when the move is
            decided (what only the current row can tell: a receipt over what the person was
            shown, a default stored on the task); applied after ``values``.
    """

    task_id: str
    to: TaskStatus
    action: str
    actor: Principal
    channel: Channel
    allowed_from: frozenset[TaskStatus] | None = None
    values: Mapping[str, Any] | None = None
    detail: dict[str, Any] | None = None
    check: Check | None = None
    derive: Derive | None = None


class ConcurrentChange(RetryAlone):
    """Another process changed a task between a batch's read and its write (SQLite only:
    PostgreSQL's rows are locked for the batch). The writer retries each write alone."""


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
    """Move one task to ``to`` if the state machine (and ``allowed_from``) permit it."""
    move = Move(task_id, to, action, actor, channel, allowed_from, values, detail, check)
    (outcome,) = await transition_many(conn, [move], engines=engines)
    return outcome


async def transition_many(
    conn: AsyncConnection, moves: Sequence[Move], *, engines: frozenset[str] = frozenset()
) -> list[Moved | Refused]:
    """Apply ``moves`` in order, on the caller's connection: one outcome per move.

    A batch costs a handful of statements whatever its size (one read of every task, one
    update per set of columns, one insert of the audit rows, one of the outbox rows, one
    statement of change notices), where a statement per task and per row made a burst of
    answers four times dearer than a burst of creates. Moves on the same task apply one
    after the other, each deciding on the task as the previous one left it.

    The write is a compare-and-set: it lands only where status and version are still those
    read. On PostgreSQL the read locks the rows (``FOR UPDATE``, in id order so two batches
    never wait on each other), so it always lands. On SQLite one process writes; should
    another have written the file in between, a single move decides again on the row as it
    is now (as if it had come second), and a batch raises :class:`ConcurrentChange`.
    """
    while True:
        outcomes, writes, audits, events = _decide(await _read(conn, moves), moves, engines)
        if await _write(conn, writes, single=len(moves) == 1):
            break
    if audits:
        await conn.execute(insert(AuditRow), audits)
    if events:
        await conn.execute(insert(OutboxRow), events)
    await announce_many(conn, [(o.task_id, o.version) for o in outcomes if isinstance(o, Moved)])
    return outcomes


async def _read(conn: AsyncConnection, moves: Sequence[Move]) -> dict[str, TaskRecord]:
    ids = sorted({m.task_id for m in moves})
    query = select(TaskRow).where(TaskRow.id.in_(ids) if len(ids) > 1 else TaskRow.id == ids[0])
    if conn.dialect.name == "postgresql":
        query = query.order_by(TaskRow.id).with_for_update()
    rows = (await conn.execute(query)).mappings().all()
    return {row["id"]: TaskRecord.from_row(row) for row in rows}


@dataclass(slots=True)
class _Write:
    """One task's update: the columns to set and the status and version it was read at."""

    task_id: str
    status: TaskStatus
    version: int
    values: dict[str, Any]


def _decide(
    tasks: dict[str, TaskRecord], moves: Sequence[Move], engines: frozenset[str]
) -> tuple[list[Moved | Refused], dict[str, _Write], list[dict[str, Any]], list[dict[str, Any]]]:
    outcomes: list[Moved | Refused] = []
    writes: dict[str, _Write] = {}
    audits: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    now = utcnow()
    for move in moves:
        task = tasks.get(move.task_id)
        if task is None:
            outcomes.append(Refused(move.task_id, None))
            continue
        current = task.status
        allowed = move.allowed_from
        if not can_move(current, move.to) or (allowed is not None and current not in allowed):
            outcomes.append(Refused(move.task_id, current, task=task))
            continue
        if move.check is not None and (reason := move.check(task)) is not None:
            outcomes.append(Refused(move.task_id, current, reason, task=task))
            continue
        new_values = {"status": move.to.value, "version": task.version + 1, "updated_at": now}
        if move.values:
            new_values.update(move.values)
        if move.derive is not None:
            new_values.update(move.derive(task))
        audit = audit_values(
            task.id,
            action=move.action,
            from_status=current,
            to_status=move.to,
            actor=move.actor,
            channel=move.channel,
            detail=move.detail,
        ) | {"at": now}
        # The row extends the task's chain; the head moves in the same update (several
        # moves of one task in a batch chain one after the other, through ``tasks``).
        audit["chain_hash"] = new_values["audit_head"] = chain_hash(task.audit_head, audit)
        write = writes.setdefault(task.id, _Write(task.id, current, task.version, {}))
        write.values.update(new_values)
        moved = tasks[task.id] = task.with_values(new_values)
        audits.append(audit)
        if is_terminal(move.to):
            found = terminal_rows(moved, engines=engines)
        elif move.to is S.SUBMITTED:
            # An answer under verification always has its verification job, from this commit.
            found = verify_rows(moved)
        else:
            found = []
        events += found
        outcomes.append(Moved(moved, current, len(found)))
    return outcomes, writes, audits, events


_TASKS = cast(Table, TaskRow.__table__)


async def _write(conn: AsyncConnection, writes: dict[str, _Write], *, single: bool) -> bool:
    """Run the updates, one statement per set of columns; False: decide again (one move)."""
    by_columns: dict[tuple[str, ...], list[_Write]] = {}
    for write in writes.values():
        by_columns.setdefault(tuple(sorted(write.values)), []).append(write)
    checked = conn.dialect.name != "postgresql"
    for columns, group in by_columns.items():
        statement = (
            update(_TASKS)
            .where(
                _TASKS.c.id == bindparam("w_id"),
                _TASKS.c.status == bindparam("w_status"),
                _TASKS.c.version == bindparam("w_version"),
            )
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        params = [
            {"w_id": w.task_id, "w_status": w.status.value, "w_version": w.version}
            | {f"v_{c}": w.values[c] for c in columns}
            for w in group
        ]
        result = await conn.execute(statement, params)
        if checked and result.rowcount != len(group):
            if single:
                # Another process changed the task between our read and our write. Decide
                # again on the row as it is now, as if our call had come second: the move may
                # still be allowed (claimed -> answered), or be refused with the status that
                # won. Each retry means another writer made progress, so this ends.
                return False
            raise ConcurrentChange(f"{len(group) - result.rowcount} task(s) changed meanwhile")
    return True


async def annotate(
    conn: AsyncConnection,
    task_id: str,
    *,
    status: TaskStatus | frozenset[TaskStatus],
    action: str,
    actor: Principal,
    channel: Channel,
    values: Mapping[str, Any],
    detail: dict[str, Any] | None = None,
    audited: bool = True,
    check: Check | None = None,
    derive: Derive | None = None,
    events: Callable[[TaskRecord], list[dict[str, Any]]] | None = None,
) -> Moved | Refused:
    """Change a task's fields while it stays in its status (a verifier's provider failing,
    a vote towards several approvals, a reminder sent).

    The same compare-and-set as :func:`transition` (the version moves, so live pages and
    replicas see the change), an audit row from the status to itself when ``audited``.
    Refused once the task has left ``status`` (one status or a set of them), or when
    ``check`` says no on the task as it is. ``derive`` computes more columns from that task
    (``nudges_done + 1``: two replicas that read the same row cannot both take the step,
    as the loser decides again on the row the winner left). ``events`` makes the outbox
    rows the change owes (none by default), from the task as changed.
    """
    statuses = frozenset({status}) if isinstance(status, TaskStatus) else status
    while True:
        found = (
            (await conn.execute(select(TaskRow).where(TaskRow.id == task_id)))
            .mappings()
            .one_or_none()
        )
        if found is None:
            return Refused(task_id, None)
        task = TaskRecord.from_row(found)
        if task.status not in statuses:
            return Refused(task_id, task.status, task=task)
        if check is not None and (reason := check(task)) is not None:
            return Refused(task_id, task.status, reason, task=task)
        now = utcnow()
        new_values = {**values, "version": task.version + 1, "updated_at": now}
        if derive is not None:
            new_values.update(derive(task))
        audit: dict[str, Any] | None = None
        if audited:
            audit = audit_values(
                task_id,
                action=action,
                from_status=task.status,
                to_status=task.status,
                actor=actor,
                channel=channel,
                detail=detail,
            ) | {"at": now}
            audit["chain_hash"] = new_values["audit_head"] = chain_hash(task.audit_head, audit)
        result = await conn.execute(
            update(TaskRow)
            .where(
                TaskRow.id == task_id,
                TaskRow.status == task.status.value,
                TaskRow.version == task.version,
            )
            .values(**new_values)
        )
        if result.rowcount == 1:
            break
    if audit is not None:
        await conn.execute(insert(AuditRow).values(audit))
    moved = task.with_values(new_values)
    rows = events(moved) if events is not None else []
    if rows:
        await conn.execute(insert(OutboxRow), rows)
    await announce(conn, task_id, moved.version)
    return Moved(moved, task.status, len(rows))


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
    """An audit row's values, for callers that insert rows in bulk (task creation); the
    caller adds its ``chain_hash`` (``security.receipts.chain_hash``) once ``at`` is final."""
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
