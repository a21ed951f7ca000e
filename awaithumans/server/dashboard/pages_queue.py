"""The queue (open tasks), the audit list (finished tasks), and the live-update feed.

Both lists read 50 rows (plus one, to know whether a next page exists) straight off an
index in the order shown: the open tasks newest first from ``ix_tasks_open_created`` (or
``ix_tasks_open_assignee_created`` for one assignee), the finished ones from
``ix_tasks_finished_updated``; a reviewer's audit list from the assignee and answerer
indexes. Assignees are named through one outer join, only the shown columns are read, and
no payload is decrypted: a page is two small queries however many tasks exist.

Each row has a checkbox for the bulk answer (``pages_bulk.py``), usable once this person
has opened the task (``task_views``, joined on its primary key). The checkboxes belong to
the form outside the live list (``form="bulk-form"``), so a re-rendered list keeps the form;
``app.js`` keeps what was ticked.

Live updates: the page carries the hub's change sequence; ``app.js`` long-polls
``/ui/changes`` with it and, when it moves, re-fetches the list from ``/ui/queue`` (or
``/ui/audit``), which renders the same fragment the page embeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import ColumnElement, Select, TextClause, and_, func, or_, select, text, tuple_
from starlette.responses import JSONResponse, Response

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import TaskStatus
from awaithumans.server.api.errors import error_response
from awaithumans.server.dashboard.access import ctx_of, page_user, require_user
from awaithumans.server.dashboard.render import render
from awaithumans.server.db.models import (
    FINISHED_TASK_CONDITION,
    OPEN_TASK_CONDITION,
    TaskRow,
    TaskViewRow,
    UserRow,
)
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal
from awaithumans.server.services.approvers import NO_GROUPS, listed_condition, own_groups
from awaithumans.server.services.candidates import offered_condition
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.memberships import Groups
from awaithumans.server.services.paging import decode_cursor, encode_cursor

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_QUERY_CHARS = 200
CHANGES_TIMEOUT_DEFAULT = 25
CHANGES_TIMEOUT_MAX = 30

OPEN_STATUSES = tuple(s.value for s in TaskStatus if not s.is_terminal)
FINISHED_STATUSES = tuple(s.value for s in TaskStatus if s.is_terminal)
CHANNELS = tuple(c.value for c in Channel)

Condition: TypeAlias = ColumnElement[bool] | TextClause
# Exactly the text of the partial indexes' WHERE clauses, so both planners see that the
# index covers the query (SQLite matches the expression, not its meaning).
_IS_OPEN = text(OPEN_TASK_CONDITION)
_IS_FINISHED = text(FINISHED_TASK_CONDITION)

# Pill colour per status: waiting (accent), someone on it (warn), went wrong (danger).
STATUS_PILL = {
    "created": "pill-muted",
    "notified": "",
    "assigned": "",
    "in_progress": "pill-warn",
    "submitted": "pill-warn",
    "rejected": "pill-danger",
    "completed": "pill-ok",
    "timed_out": "pill-warn",
    "cancelled": "pill-muted",
    "verification_exhausted": "pill-danger",
}

_NO_STORE = {"Cache-Control": "no-store"}


def _text_param(request: Request, name: str) -> str:
    return request.query_params.get(name, "").strip()[:MAX_QUERY_CHARS]


def _choice_param(request: Request, name: str, allowed: tuple[str, ...]) -> str:
    value = request.query_params.get(name, "")
    return value if value in allowed else ""


def _cursor_param(request: Request) -> tuple[str, tuple[datetime, str] | None]:
    """The raw cursor and its decoded position; a cursor this server did not issue
    (edited, truncated) is ignored and the first page shown."""
    raw = request.query_params.get("cursor", "")[:MAX_QUERY_CHARS]
    if not raw:
        return "", None
    try:
        return raw, decode_cursor(raw)
    except ApiError:
        return "", None


def _contains(column: Any, needle: str) -> ColumnElement[bool]:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found: ColumnElement[bool] = column.ilike(f"%{escaped}%", escape="\\")
    return found


def _before(at_col: Any, position: tuple[datetime, str]) -> ColumnElement[bool]:
    """Rows after ``position`` in (time, id) descending order: the next page.

    A row-value comparison, so both databases seek to the position in the index instead
    of reading past every earlier page.
    """
    after: ColumnElement[bool] = tuple_(at_col, TaskRow.id) < tuple_(*position)
    return after


def _url(path: str, params: dict[str, str]) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(kept)}" if kept else path


@dataclass(frozen=True)
class Listing:
    """One page of a list: rows, where the next page starts, and the filters that made it."""

    rows: list[dict[str, Any]]
    params: dict[str, str]
    next_cursor: str | None
    cursor: str
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether a filter narrows the list (the cursor is paging, not filtering)."""
        return any(self.params.values())

    def urls(self, page_path: str, fragment_path: str) -> dict[str, str]:
        here = {**self.params, "cursor": self.cursor}
        return {
            "live_url": _url(fragment_path, here),
            "first_url": _url(page_path, self.params),
            "next_url": (
                _url(page_path, {**self.params, "cursor": self.next_cursor})
                if self.next_cursor
                else ""
            ),
            "clear_url": page_path,
        }


def _page(rows: list[dict[str, Any]], at_key: str) -> tuple[list[dict[str, Any]], str | None]:
    if len(rows) <= PAGE_SIZE:
        return rows, None
    rows = rows[:PAGE_SIZE]
    return rows, encode_cursor(rows[-1][at_key], rows[-1]["id"])


# --- the queue ------------------------------------------------------------------------


def _queue_scope(who: Principal, groups: Groups = NO_GROUPS) -> list[ColumnElement[bool]]:
    """Operators see every open task; reviewers what is assigned to them, the tasks
    whose approvers name them (``groups``: their roles and pools) and those offered to them
    that nobody took yet (``services/candidates.py``); a handoff session its one task."""
    if who.scope_task_id is not None:
        return [TaskRow.id == who.scope_task_id]
    if who.is_operator:
        return []
    mine = TaskRow.assigned_to_user_id == who.id
    others = [c for c in (listed_condition(who, groups), offered_condition(who)) if c is not None]
    return [or_(mine, *others) if others else mine]


def _open_count_scope(who: Principal, groups: Groups = NO_GROUPS) -> list[Condition]:
    """How many open tasks the header shows, counted from an index.

    An operator's count names the open statuses (IN), so ix_tasks_status serves it by
    looking up each one, reading open entries only; the NOT IN of the list query would
    make SQLite count through every entry of that index instead.
    """
    if who.is_operator:
        return [TaskRow.status.in_(OPEN_STATUSES)]
    return [_IS_OPEN, *_queue_scope(who, groups)]


def queue_statement(
    who: Principal,
    *,
    status: str = "",
    assigned: str = "",
    q: str = "",
    after: tuple[datetime, str] | None = None,
    groups: Groups = NO_GROUPS,
) -> Select[*tuple[Any, ...]]:
    """One page (plus one row, to know whether another page follows) of open tasks."""
    conditions: list[Condition] = [_IS_OPEN, *_queue_scope(who, groups)]
    if status:
        conditions.append(TaskRow.status == status)
    if assigned == "me":
        conditions.append(TaskRow.assigned_to_user_id == who.id)
    elif assigned == "unassigned":
        conditions.append(TaskRow.assigned_to_user_id.is_(None))
    if q:
        conditions.append(_contains(TaskRow.task, q))
    if after is not None:
        conditions.append(_before(TaskRow.created_at, after))
    return (
        select(
            TaskRow.id,
            TaskRow.task,
            TaskRow.status,
            TaskRow.created_at,
            TaskRow.timeout_at,
            TaskRow.assigned_to_user_id,
            UserRow.display_name.label("assignee_name"),
            UserRow.email.label("assignee_email"),
            TaskViewRow.first_at.label("opened_at"),
        )
        .select_from(TaskRow)
        .outerjoin(UserRow, UserRow.id == TaskRow.assigned_to_user_id)
        # Whether this person opened each task (a primary-key probe per shown row): only
        # those can be picked for a bulk answer.
        .outerjoin(
            TaskViewRow, and_(TaskViewRow.task_id == TaskRow.id, TaskViewRow.user_id == who.id)
        )
        .where(*conditions)
        .order_by(TaskRow.created_at.desc(), TaskRow.id.desc())
        .limit(PAGE_SIZE + 1)
    )


async def _queue(request: Request, who: Principal) -> dict[str, Any]:
    ctx = ctx_of(request)
    # Read before the rows: a change committed after this point moves the sequence past
    # what the page carries, so the browser re-fetches rather than missing it.
    sequence = ctx.hub.sequence
    params = {
        "status": _choice_param(request, "status", OPEN_STATUSES),
        "assigned": _choice_param(request, "assigned", ("me", "unassigned")),
        "q": _text_param(request, "q"),
    }
    if not who.is_operator:
        params["assigned"] = ""  # everything a reviewer sees is assigned to them
    cursor, after = _cursor_param(request)
    groups = await own_groups(ctx.reader, who)  # tasks whose approvers name them show too
    statement = queue_statement(who, **params, after=after, groups=groups)
    count = select(func.count()).select_from(TaskRow).where(*_open_count_scope(who, groups))
    async with ctx.engine.connect() as conn:
        found = [dict(r._mapping) for r in await conn.execute(statement)]
        open_count = (await conn.execute(count)).scalar_one()
    rows, next_cursor = _page(found, "created_at")
    listing = Listing(rows=rows, params=params, next_cursor=next_cursor, cursor=cursor)
    return {
        "listing": listing,
        "rows": rows,
        "filters": params,
        "open_count": open_count,
        "sequence": sequence,
        "now": datetime.now(UTC),
        "open_statuses": OPEN_STATUSES,
        "status_pill": STATUS_PILL,
        "base_url": ctx.settings.base_url(),
        **listing.urls("/", "/ui/queue"),
    }


@router.get("/")
async def queue_page(request: Request) -> Response:
    who = await require_user(request)
    return render(request, "queue.html", await _queue(request, who))


@router.get("/ui/queue")
async def queue_fragment(request: Request) -> Response:
    """The queue's list alone (what the page embeds), for live updates."""
    who = await page_user(request)
    if who is None:
        return _signed_out()
    return render(request, "_queue_rows.html", await _queue(request, who))


# --- the audit list -------------------------------------------------------------------


def _audit_scope(who: Principal) -> list[ColumnElement[bool]]:
    """Operators see every finished task; reviewers what was theirs or what they answered;
    a handoff session its one task."""
    if who.scope_task_id is not None:
        return [TaskRow.id == who.scope_task_id]
    if who.is_operator:
        return []
    return [or_(TaskRow.assigned_to_user_id == who.id, TaskRow.completed_by_user_id == who.id)]


def _day(request: Request, name: str, errors: dict[str, str]) -> tuple[str, date | None]:
    raw = _text_param(request, name)
    if not raw:
        return "", None
    try:
        return raw, date.fromisoformat(raw)
    except ValueError:
        # Not kept in the form (a date input cannot show it) nor applied: named in the error.
        errors[name] = f"“{raw}” is not a date; use one like 2026-01-31."
        return "", None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def audit_statement(
    who: Principal,
    *,
    status: str = "",
    channel: str = "",
    answered_by: str = "",
    q: str = "",
    since: date | None = None,
    until: date | None = None,
    after: tuple[datetime, str] | None = None,
) -> Select[*tuple[Any, ...]]:
    """One page (plus one row) of finished tasks, most recently finished first.

    A finished task never changes again, so ``updated_at`` is when it finished: the
    moment it was answered, timed out or was cancelled.
    """
    conditions: list[Condition] = [_IS_FINISHED, *_audit_scope(who)]
    if status:
        # "None of the other finished statuses" rather than "= status": an equality would
        # steer SQLite to ix_tasks_status and a sort of, say, every completed task ever.
        conditions.append(TaskRow.status.not_in([s for s in FINISHED_STATUSES if s != status]))
    if channel:
        conditions.append(TaskRow.completed_via_channel == channel)
    if answered_by:
        conditions.append(
            or_(
                _contains(TaskRow.completed_by_email, answered_by),
                _contains(TaskRow.completed_by_display_name, answered_by),
            )
        )
    if q:
        conditions.append(_contains(TaskRow.task, q))
    if since is not None:
        conditions.append(TaskRow.updated_at >= _midnight(since))
    if until is not None:
        conditions.append(TaskRow.updated_at < _midnight(until + timedelta(days=1)))
    if after is not None:
        conditions.append(_before(TaskRow.updated_at, after))
    return (
        select(
            TaskRow.id,
            TaskRow.task,
            TaskRow.status,
            TaskRow.updated_at,
            TaskRow.completed_by_email,
            TaskRow.completed_by_display_name,
            TaskRow.completed_via_channel,
        )
        .where(*conditions)
        .order_by(TaskRow.updated_at.desc(), TaskRow.id.desc())
        .limit(PAGE_SIZE + 1)
    )


async def _audit(request: Request, who: Principal) -> dict[str, Any]:
    ctx = ctx_of(request)
    sequence = ctx.hub.sequence
    errors: dict[str, str] = {}
    since_raw, since = _day(request, "from", errors)
    until_raw, until = _day(request, "to", errors)
    if since is not None and until is not None and until < since:
        errors["to"] = "The end date is before the start date."
        until = None
    params = {
        "status": _choice_param(request, "status", FINISHED_STATUSES),
        "channel": _choice_param(request, "channel", CHANNELS),
        "answered_by": _text_param(request, "answered_by"),
        "q": _text_param(request, "q"),
    }
    cursor, after = _cursor_param(request)
    statement = audit_statement(who, **params, since=since, until=until, after=after)
    async with ctx.engine.connect() as conn:
        found = [dict(r._mapping) for r in await conn.execute(statement)]
    rows, next_cursor = _page(found, "updated_at")
    listing = Listing(
        rows=rows,
        params={**params, "from": since_raw, "to": until_raw},
        next_cursor=next_cursor,
        cursor=cursor,
        errors=errors,
    )
    return {
        "listing": listing,
        "rows": rows,
        "filters": listing.params,
        "errors": errors,
        "sequence": sequence,
        "finished_statuses": FINISHED_STATUSES,
        "channels": CHANNELS,
        "status_pill": STATUS_PILL,
        **listing.urls("/audit", "/ui/audit"),
    }


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    who = await require_user(request)
    return render(request, "audit.html", await _audit(request, who))


@router.get("/ui/audit")
async def audit_fragment(request: Request) -> Response:
    """The audit list alone, for live updates (newly finished tasks appear on top)."""
    who = await page_user(request)
    if who is None:
        return _signed_out()
    return render(request, "_audit_rows.html", await _audit(request, who))


# --- live updates ---------------------------------------------------------------------


def _signed_out() -> Response:
    return error_response(
        401, ErrorCode.UNAUTHENTICATED, "Your session has ended; sign in again.", headers=_NO_STORE
    )


@router.get("/ui/changes")
async def changes(
    request: Request, since: int = 0, timeout: int = CHANGES_TIMEOUT_DEFAULT
) -> Response:
    """Long-poll: ``{"sequence": N}`` once any task changed after ``since``, or at timeout.

    A ``since`` from the future (the server restarted and counts from zero again) is
    answered at once with the current sequence, which the page then adopts.
    """
    if await page_user(request) is None:
        return _signed_out()
    hub = ctx_of(request).hub
    wait = float(min(max(timeout, 1), CHANGES_TIMEOUT_MAX))
    sequence = hub.sequence if since > hub.sequence else await hub.wait_any(since, wait)
    if hub.closing and sequence == since:
        # Shutting down: without this the browser would re-poll in a tight loop until the
        # process is gone. It retries after a pause and finds the next process.
        return error_response(
            503,
            ErrorCode.SERVER_RESTARTING,
            "The server is shutting down; poll again.",
            headers={**_NO_STORE, "Retry-After": "3", "Connection": "close"},
        )
    return JSONResponse({"sequence": sequence}, headers=_NO_STORE)
