"""Task figures for a period: counts, completion rate, time to first view and time to answer,
overall and by group.

Read by ``GET /api/stats`` and the dashboard's Analytics page, so both show the same numbers.
Counts and groups come from SQL over ``tasks`` (joined with ``users`` for names and with
``task_audit`` for the channel that ended a task); percentiles are taken in Python over the
selected durations, because SQLite has no percentile function and both dialects must agree.

Bounded: the figures cover at most the newest :data:`MAX_TASKS` tasks created in the period
(the response says how many tasks the period holds and whether it was cut), so a wide period
on a busy server costs one indexed scan of that many narrow rows, never the whole table.

Time to first view is ``tasks.first_viewed_at`` (set by ``services/first_view.py`` the first
time a person opens the open task: the dashboard's task page, the Slack modal, the email answer
page) less ``created_at``, over the tasks someone opened; a task answered without being opened
(a Slack thread or email reply, the API) has none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import TaskStatus
from awaithumans.server.db.models import AuditRow, TaskRow, UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.errors import ApiError

#: At most this many tasks (the newest in the period) are counted.
MAX_TASKS = 50_000
#: The widest period one request may ask for.
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 7
MAX_TITLE_CHARS = 200

GroupBy = Literal["channel", "assignee"]
GROUPINGS: tuple[GroupBy, ...] = ("channel", "assignee")

#: The group of tasks with no channel yet (still open) or nobody assigned or answering.
OPEN_GROUP = "open"
UNASSIGNED_GROUP = "unassigned"

_FINISHED = tuple(s.value for s in TaskStatus if s.is_terminal)


@dataclass(frozen=True)
class Period:
    """``since`` inclusive, ``until`` exclusive, both aware UTC."""

    since: datetime
    until: datetime


def _refuse(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        ErrorCode.VALIDATION_ERROR,
        f"Invalid request: {field}: {message}",
        details=[{"loc": [field], "msg": message, "type": "invalid_period"}],
    )


def _parse_moment(field: str, value: str, *, end_of_day: bool) -> datetime:
    """An ISO date or date-time; a bare date means the start of that day (UTC), or for
    ``until`` the end of it, so "until 2026-12-06" includes the 6th as a date picker means."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        parsed = datetime.fromisoformat(text)
        # A time without an offset is taken as UTC, the zone every figure is shown in.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except ValueError:
        raise _refuse(field, "not an ISO 8601 date or date-time") from None
    except OverflowError:
        raise _refuse(field, "out of the range of dates") from None


def parse_period(since: str | None, until: str | None, *, now: datetime | None = None) -> Period:
    """The period a request names; by default the last :data:`DEFAULT_PERIOD_DAYS` days.

    Raises:
        ApiError: 422 ``VALIDATION_ERROR``: an unparseable date, ``until`` not after
            ``since``, or a period over :data:`MAX_PERIOD_DAYS` days.
    """
    try:
        end = _parse_moment("until", until, end_of_day=True) if until else (now or utcnow())
        start = (
            _parse_moment("since", since, end_of_day=False)
            if since
            else end - timedelta(days=DEFAULT_PERIOD_DAYS)
        )
    except OverflowError:
        # The day after 9999-12-31, or seven days before year 1: no period a task is in.
        raise _refuse("since" if since else "until", "out of the range of dates") from None
    if end <= start:
        raise _refuse("until", "must be after since")
    if end - start > timedelta(days=MAX_PERIOD_DAYS):
        raise _refuse("since", f"the period may span at most {MAX_PERIOD_DAYS} days")
    return Period(start, end)


class Percentiles(BaseModel):
    """Seconds; null when no task in the set has the duration."""

    p50: float | None
    p90: float | None


class Figures(BaseModel):
    created: int
    completed: int
    timed_out: int
    cancelled: int
    verification_exhausted: int
    open: int
    #: completed / finished (completed, timed out, cancelled, verification exhausted);
    #: null while nothing has finished.
    completion_rate: float | None
    #: created_at to completed_at, over the completed tasks.
    time_to_answer_seconds: Percentiles
    #: created_at to first_viewed_at (a person first opened it), over the tasks opened.
    time_to_first_view_seconds: Percentiles


class Group(BaseModel):
    key: str
    label: str
    figures: Figures


class Stats(BaseModel):
    since: datetime
    until: datetime
    title: str | None
    group_by: GroupBy | None
    #: Tasks created in the period (and matching ``title``), whether counted or not.
    tasks_in_period: int
    #: The figures cover the newest ``max_tasks`` of them; ``truncated`` when that is fewer.
    max_tasks: int
    truncated: bool
    totals: Figures
    groups: list[Group]


@dataclass(frozen=True)
class _Row:
    status: str
    answer_seconds: float | None
    view_seconds: float | None
    key: str
    label: str


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile: the smallest value with ``fraction`` of them at or below."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _figures(rows: Iterable[_Row]) -> Figures:
    counts = dict.fromkeys((s.value for s in TaskStatus), 0)
    answers: list[float] = []
    views: list[float] = []
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
        if row.answer_seconds is not None:
            answers.append(row.answer_seconds)
        if row.view_seconds is not None:
            views.append(row.view_seconds)
    created = sum(counts.values())
    finished = sum(counts[s] for s in _FINISHED)
    completed = counts[TaskStatus.COMPLETED]
    return Figures(
        created=created,
        completed=completed,
        timed_out=counts[TaskStatus.TIMED_OUT],
        cancelled=counts[TaskStatus.CANCELLED],
        verification_exhausted=counts[TaskStatus.VERIFICATION_EXHAUSTED],
        open=created - finished,
        completion_rate=completed / finished if finished else None,
        time_to_answer_seconds=Percentiles(
            p50=percentile(answers, 0.5), p90=percentile(answers, 0.9)
        ),
        time_to_first_view_seconds=Percentiles(
            p50=percentile(views, 0.5), p90=percentile(views, 0.9)
        ),
    )


def _title_filter(title: str) -> str:
    escaped = title.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def task_stats(
    engine: AsyncEngine,
    period: Period,
    *,
    group_by: GroupBy | None = None,
    title: str | None = None,
    max_tasks: int = MAX_TASKS,
) -> Stats:
    """The figures for the tasks created in ``period`` whose title contains ``title``
    (any case), overall and, with ``group_by``, per channel or per assignee.

    A task's channel is the one that ended it: where the answer came from for a completed
    task (``completed_via_channel``), else the channel of its final audit row (``scheduler``
    for a timeout, where it was cancelled); an open task is in the ``open`` group. Its
    assignee is the person it was assigned to, else the one who answered it.
    """
    where: list[ColumnElement[bool]] = [
        TaskRow.created_at >= period.since,
        TaskRow.created_at < period.until,
    ]
    if title:
        where.append(TaskRow.task.ilike(_title_filter(title), escape="\\"))

    total = await _count(engine, where)
    final_channel = (
        select(AuditRow.channel)
        .where(AuditRow.task_id == TaskRow.id, AuditRow.to_status == TaskRow.status)
        .order_by(AuditRow.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    channel = case(
        (
            TaskRow.status.in_(_FINISHED),
            func.coalesce(TaskRow.completed_via_channel, final_channel),
        ),
        else_=literal(None),
    )
    assignee = func.coalesce(TaskRow.assigned_to_user_id, TaskRow.completed_by_user_id)
    query = (
        select(
            TaskRow.status,
            TaskRow.created_at,
            TaskRow.completed_at,
            TaskRow.first_viewed_at,
            channel.label("channel") if group_by == "channel" else literal(None).label("channel"),
            assignee.label("assignee"),
            UserRow.display_name,
            UserRow.email,
            TaskRow.completed_by_display_name,
        )
        .outerjoin(UserRow, UserRow.id == assignee)
        .where(*where)
        .order_by(TaskRow.created_at.desc(), TaskRow.id.desc())
        .limit(max_tasks)
    )
    async with engine.connect() as conn:
        fetched = (await conn.execute(query)).all()

    rows: list[_Row] = []
    for r in fetched:
        seconds = None
        if r.status == TaskStatus.COMPLETED and r.completed_at is not None:
            seconds = max(0.0, (r.completed_at - r.created_at).total_seconds())
        viewed = None
        if r.first_viewed_at is not None:
            viewed = max(0.0, (r.first_viewed_at - r.created_at).total_seconds())
        if group_by == "channel":
            key = r.channel or OPEN_GROUP
            label = key
        else:
            key = r.assignee or UNASSIGNED_GROUP
            label = r.display_name or r.completed_by_display_name or r.email or key
        rows.append(_Row(r.status, seconds, viewed, key, label))

    groups: list[Group] = []
    if group_by is not None:
        by_key: dict[str, list[_Row]] = {}
        for row in rows:
            by_key.setdefault(row.key, []).append(row)
        groups = [
            Group(key=key, label=members[0].label, figures=_figures(members))
            for key, members in by_key.items()
        ]
        # Busiest first; ties in a stable order.
        groups.sort(key=lambda g: (-g.figures.created, g.label, g.key))

    return Stats(
        since=period.since,
        until=period.until,
        title=title or None,
        group_by=group_by,
        tasks_in_period=total,
        max_tasks=max_tasks,
        truncated=total > len(rows),
        totals=_figures(rows),
        groups=groups,
    )


async def _count(engine: AsyncEngine, where: list[ColumnElement[bool]]) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(select(func.count()).select_from(TaskRow).where(*where))
    return int(found or 0)
