"""The task API: create, read, long-poll, answer, claim, cancel."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select

from awaithumans.core._wire import (
    MAX_POLL_SECONDS,
    CompleteTaskRequest,
    CreateTaskRequest,
    ErrorBody,
    PollResponse,
    TaskStatus,
    TaskView,
)
from awaithumans.server.api.deps import AnyPrincipal, Ctx, Human, json_response
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import AuditRow, TaskRow
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal
from awaithumans.server.services.hub import Snapshot
from awaithumans.server.services.lifecycle import ANSWERABLE, Channel, Moved, Refused
from awaithumans.server.services.task_actions import Cancel, Claim, Complete, TaskAction
from awaithumans.server.services.task_create import prepare_create
from awaithumans.server.services.views import open_for, snapshot_of, view_of

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

_TASK_ID = re.compile(r"^tsk_[0-9a-f]{24}$")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422)
}


def _not_found(task_id: str) -> ApiError:
    return ApiError(404, "TASK_NOT_FOUND", f"No task {task_id!r}.")


def can_see(principal: Principal, owner_id: str, assignee: str | None) -> bool:
    """Operators see everything; agents their own tasks; reviewers what is assigned to them."""
    if principal.is_operator or owner_id == principal.owner_id:
        return True
    return principal.kind == "user" and assignee == principal.id


async def _load_row(ctx: ServerContext, task_id: str) -> Mapping[str, Any] | None:
    if not _TASK_ID.match(task_id):
        return None
    async with ctx.engine.connect() as conn:
        found = (
            (await conn.execute(select(TaskRow).where(TaskRow.id == task_id)))
            .mappings()
            .one_or_none()
        )
    return dict(found) if found is not None else None


async def _visible_row(ctx: ServerContext, task_id: str, who: Principal) -> Mapping[str, Any]:
    row = await _load_row(ctx, task_id)
    if row is None or not can_see(who, row["owner_id"], row["assigned_to_user_id"]):
        # Someone else's task is indistinguishable from a missing one.
        raise _not_found(task_id)
    return row


async def _snapshot(ctx: ServerContext, task_id: str) -> Snapshot | None:
    snap = ctx.hub.get(task_id)
    if snap is not None:
        return snap
    row = await _load_row(ctx, task_id)
    if row is None:
        return None
    snap = snapshot_of(row, open_for(ctx.sealer, task_id, row["response_enc"]))
    ctx.hub.remember(snap)
    return snap


@router.post(
    "",
    status_code=201,
    response_model=TaskView,
    responses=_ERRORS,
    summary="Create a task (idempotent by idempotency_key)",
)
async def create_task(body: CreateTaskRequest, ctx: Ctx, who: AnyPrincipal) -> Response:
    write = prepare_create(ctx, body, who)
    result = await ctx.writer.submit(write)
    if result.conflict or result.view is None:
        raise ApiError(
            409,
            "IDEMPOTENCY_CONFLICT",
            f"Idempotency key {body.idempotency_key!r} is already used by a task with"
            " different content.",
        )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return json_response(result.view.model_dump_json(), 201, headers)


class TaskPage(BaseModel):
    items: list[TaskView]
    next_cursor: str | None = None


def _encode_cursor(created_at: datetime, task_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{task_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    invalid = ApiError(400, "INVALID_CURSOR", "The cursor is not one this server issued.")
    try:
        stamp, task_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        at = datetime.fromisoformat(stamp)
        # Issued cursors hold an aware UTC time and a task id; anything else would reach the
        # database as a naive or out-of-range time (or NUL text) and fail there as a 500.
        if at.tzinfo is None or not _TASK_ID.match(task_id):
            raise invalid
        return at.astimezone(UTC), task_id
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise invalid from None


@router.get("", response_model=TaskPage, responses=_ERRORS, summary="List tasks, newest first")
async def list_tasks(
    ctx: Ctx,
    who: AnyPrincipal,
    status: Annotated[list[TaskStatus] | None, Query()] = None,
    assigned: Annotated[
        str | None, Query(max_length=64, description="me | unassigned | id")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="search in the title")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    query = select(TaskRow)
    if not who.is_operator:
        mine = TaskRow.owner_id == who.owner_id
        if who.kind == "user":
            mine = or_(mine, TaskRow.assigned_to_user_id == who.id)
        query = query.where(mine)
    if status:
        query = query.where(TaskRow.status.in_([s.value for s in status]))
    if assigned == "me":
        query = query.where(TaskRow.assigned_to_user_id == who.id)
    elif assigned == "unassigned":
        query = query.where(TaskRow.assigned_to_user_id.is_(None))
    elif assigned:
        query = query.where(TaskRow.assigned_to_user_id == assigned)
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(TaskRow.task.ilike(f"%{escaped}%", escape="\\"))
    if cursor:
        at, last_id = _decode_cursor(cursor)
        query = query.where(
            or_(TaskRow.created_at < at, and_(TaskRow.created_at == at, TaskRow.id < last_id))
        )
    query = query.order_by(TaskRow.created_at.desc(), TaskRow.id.desc()).limit(limit + 1)
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    more = len(rows) > limit
    rows = rows[:limit]
    page = TaskPage(
        items=[
            view_of(dict(r), ctx.sealer, ctx.settings.base_url(), include_payload=False)
            for r in rows
        ],
        next_cursor=_encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None,
    )
    return json_response(page.model_dump_json())


@router.get("/{task_id}", response_model=TaskView, responses=_ERRORS, summary="One task")
async def get_task(task_id: str, ctx: Ctx, who: AnyPrincipal) -> Response:
    row = await _visible_row(ctx, task_id, who)
    # Reviewers see a redacted payload only through channels that honour redaction.
    hide = bool(row["redact_payload"]) and who.kind == "user" and not who.is_operator
    return json_response(
        view_of(
            row, ctx.sealer, ctx.settings.base_url(), include_payload=not hide
        ).model_dump_json()
    )


@router.get(
    "/{task_id}/poll",
    response_model=PollResponse,
    responses=_ERRORS,
    summary="Long-poll: returns as soon as the task changes, or after `timeout` seconds",
)
async def poll_task(
    task_id: str,
    ctx: Ctx,
    who: AnyPrincipal,
    timeout: Annotated[int, Query(ge=1, le=MAX_POLL_SECONDS)] = 25,
) -> Response:
    snap = await _snapshot(ctx, task_id)
    if snap is None or not can_see(who, snap.owner_id, snap.assigned_to_user_id):
        raise _not_found(task_id)
    if not snap.terminal:
        await ctx.hub.wait(task_id, snap.version, float(timeout))
        snap = await _snapshot(ctx, task_id) or snap
        if ctx.hub.closing and not snap.terminal:
            # Shutting down: send the client elsewhere (it retries with backoff) and drop
            # the keep-alive connection so it cannot park here again.
            raise ApiError(
                503,
                "SERVER_RESTARTING",
                "The server is shutting down; poll again.",
                headers={"Connection": "close", "Retry-After": "1"},
            )
    body = PollResponse(
        status=snap.status,
        response=snap.response if snap.status is TaskStatus.COMPLETED else None,
        completed_at=snap.completed_at,
        timed_out_at=snap.timed_out_at,
        verification_attempt=snap.verification_attempt,
    )
    return json_response(body.model_dump_json())


class AuditEntry(BaseModel):
    id: int
    at: datetime
    action: str
    from_status: TaskStatus | None
    to_status: TaskStatus
    actor_type: str
    actor_id: str | None
    actor_label: str | None
    channel: str
    detail: dict[str, Any] | None = None


@router.get(
    "/{task_id}/audit", response_model=list[AuditEntry], responses=_ERRORS, summary="Audit trail"
)
async def task_audit(task_id: str, ctx: Ctx, who: AnyPrincipal) -> Response:
    await _visible_row(ctx, task_id, who)
    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(AuditRow).where(AuditRow.task_id == task_id).order_by(AuditRow.id)
            )
        ).mappings()
        entries = [AuditEntry.model_validate(dict(r)) for r in rows]
    return json_response("[" + ",".join(e.model_dump_json() for e in entries) + "]")


def _refusal(result: Refused, task_id: str, verb: str) -> ApiError:
    if result.current is None:
        return _not_found(task_id)
    if result.reason == "NOT_ASSIGNED_TO_YOU":
        return ApiError(403, "NOT_ASSIGNED_TO_YOU", "This task isn't assigned to you.")
    if result.reason == "FORBIDDEN":
        return ApiError(403, "FORBIDDEN", f"You may not {verb} this task.")
    if result.current.is_terminal:
        return ApiError(
            409, "TASK_ALREADY_TERMINAL", f"The task is already {result.current.value}."
        )
    if verb == "claim":
        return ApiError(409, "TASK_ALREADY_CLAIMED", "Someone else claimed this task first.")
    return ApiError(
        409, "INVALID_TRANSITION", f"Cannot {verb} a task that is {result.current.value}."
    )


async def _act(ctx: ServerContext, action: TaskAction, verb: str) -> Response:
    result = await ctx.writer.submit(action)
    if isinstance(result, Refused):
        raise _refusal(result, action.task_id, verb)
    assert isinstance(result, Moved)
    return json_response(
        view_of(
            result.row, ctx.sealer, ctx.settings.base_url(), response=action.response()
        ).model_dump_json()
    )


@router.post(
    "/{task_id}/complete", response_model=TaskView, responses=_ERRORS, summary="Answer a task"
)
async def complete_task(task_id: str, body: CompleteTaskRequest, ctx: Ctx, who: Human) -> Response:
    row = await _visible_row(ctx, task_id, who)
    status = TaskStatus(row["status"])
    if status not in ANSWERABLE:
        raise _refusal(Refused(task_id, status), task_id, "answer")
    problems = ctx.schemas.errors(row["response_schema"], body.response, which="response")
    if problems:
        raise ApiError(
            422,
            "SCHEMA_VALIDATION_FAILED",
            "The response does not match the task's response_schema.",
            details=problems,
        )
    if row["verifier_config"] is not None:
        # Verification runs server-side; until a verifier backend is installed and keyed,
        # an answer cannot be checked, and an unchecked answer must not land.
        raise ApiError(
            424,
            "VERIFIER_API_KEY_MISSING",
            "This task needs a verifier, and this server has no verifier backend configured.",
        )
    return await _act(ctx, Complete(ctx, task_id, who, Channel.API, body.response), "answer")


@router.post("/{task_id}/claim", response_model=TaskView, responses=_ERRORS, summary="Claim")
async def claim_task(task_id: str, ctx: Ctx, who: Human) -> Response:
    await _visible_row(ctx, task_id, who)
    return await _act(ctx, Claim(ctx, task_id, who, Channel.API), "claim")


class CancelRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


@router.post("/{task_id}/cancel", response_model=TaskView, responses=_ERRORS, summary="Cancel")
async def cancel_task(
    task_id: str, ctx: Ctx, who: AnyPrincipal, body: CancelRequest | None = None
) -> Response:
    await _visible_row(ctx, task_id, who)
    reason = body.reason if body else None
    return await _act(ctx, Cancel(ctx, task_id, who, Channel.API, reason), "cancel")
