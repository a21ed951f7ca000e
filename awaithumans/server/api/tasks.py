"""The task API: create, read, long-poll, answer, claim, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import (
    MAX_POLL_SECONDS,
    CompleteTaskRequest,
    CreateTaskRequest,
    ErrorBody,
    PollResponse,
    TaskStatus,
    TaskView,
)
from awaithumans.server.api.deps import AnyPrincipal, Ctx, Human, Operator, json_response
from awaithumans.server.api.links import with_task_links
from awaithumans.server.api.long_poll import DEFAULT_POLL_SECONDS, answer_poll
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import AuditRow, TaskRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal
from awaithumans.server.services import answers, verification, votes
from awaithumans.server.services.candidates import offered_condition
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.paging import decode_cursor, encode_cursor
from awaithumans.server.services.task_create import prepare_create
from awaithumans.server.services.views import view_of

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}
# Success responses that carry a task link to what comes next with it (api/links.py).
_TASK_200 = with_task_links(_ERRORS, 200, "The task")


async def _visible(ctx: ServerContext, task_id: str, who: Principal) -> TaskRecord:
    task = await answers.visible_task(ctx, task_id, who)
    if task is None:
        raise answers.not_found(task_id).error()
    return task


@router.post(
    "",
    status_code=201,
    response_model=TaskView,
    responses=with_task_links(
        _ERRORS, 201, "The task: new, or the one this credential's idempotency_key names"
    ),
    summary="Create a task (idempotent by idempotency_key)",
)
async def create_task(body: CreateTaskRequest, ctx: Ctx, who: AnyPrincipal) -> Response:
    if who.scope_task_id is not None:
        # A session opened by a signed link from Slack or an email is for its one task.
        raise ApiError(403, ErrorCode.FORBIDDEN, "A signed task link opens its one task only.")
    write = await prepare_create(ctx, body, who)
    result = await ctx.writer.submit(write)
    if result.conflict or result.view is None:
        raise ApiError(
            409,
            ErrorCode.IDEMPOTENCY_CONFLICT,
            f"Idempotency key {body.idempotency_key!r} is already used by a task with"
            " different content.",
        )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    if not result.replayed:
        ctx.metrics.task_created()
    return json_response(result.view.model_dump_json(), 201, headers)


class TaskPage(BaseModel):
    items: list[TaskView]
    next_cursor: str | None = None


@router.get(
    "",
    response_model=TaskPage,
    responses=with_task_links(_ERRORS, 200, "A page of tasks", "$response.body#/items/0/id"),
    summary="List tasks, newest first",
)
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
    if who.scope_task_id is not None:
        # A handoff link's session lists its one task, not everything its person has.
        query = query.where(TaskRow.id == who.scope_task_id)
    if not who.is_operator:
        mine = TaskRow.owner_id == who.owner_id
        if who.kind == "user":
            # Theirs, and those offered to them that nobody took yet (services/candidates.py).
            offered = offered_condition(who)
            assert offered is not None
            mine = or_(mine, TaskRow.assigned_to_user_id == who.id, offered)
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
        at, last_id = decode_cursor(cursor)
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
            view_of(
                TaskRecord.from_row(r), ctx.sealer, ctx.settings.base_url(), include_payload=False
            )
            for r in rows
        ],
        next_cursor=encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None,
    )
    return json_response(page.model_dump_json())


@router.get("/{task_id}", response_model=TaskView, responses=_TASK_200, summary="One task")
async def get_task(task_id: str, ctx: Ctx, who: AnyPrincipal) -> Response:
    task = await _visible(ctx, task_id, who)
    # Reviewers see a redacted payload only through channels that honour redaction.
    hide = task.redact_payload and who.kind == "user" and not who.is_operator
    approvals = await votes.approvals_for(ctx, task)
    return json_response(
        view_of(
            task, ctx.sealer, ctx.settings.base_url(), include_payload=not hide, approvals=approvals
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
    timeout: Annotated[int, Query(ge=1, le=MAX_POLL_SECONDS)] = DEFAULT_POLL_SECONDS,
) -> Response:
    return await answer_poll(ctx, who, task_id, timeout)


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
    await _visible(ctx, task_id, who)
    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(AuditRow).where(AuditRow.task_id == task_id).order_by(AuditRow.id)
            )
        ).mappings()
        entries = [AuditEntry.model_validate(dict(r)) for r in rows]
    return json_response("[" + ",".join(e.model_dump_json() for e in entries) + "]")


def _reply(
    ctx: ServerContext, outcome: answers.Done | answers.Refusal | answers.Invalid
) -> Response:
    if isinstance(outcome, answers.Refusal):
        raise outcome.error()
    if isinstance(outcome, answers.Invalid):
        raise ApiError(
            422,
            ErrorCode.SCHEMA_VALIDATION_FAILED,
            "The response does not match the task's response_schema.",
            details=outcome.problems,
        )
    view = view_of(
        outcome.task,
        ctx.sealer,
        ctx.settings.base_url(),
        response=outcome.response,
        approvals=outcome.approvals,
    )
    return json_response(view.model_dump_json())


@router.post(
    "/{task_id}/complete", response_model=TaskView, responses=_TASK_200, summary="Answer a task"
)
async def complete_task(task_id: str, body: CompleteTaskRequest, ctx: Ctx, who: Human) -> Response:
    outcome = await answers.answer(ctx, task_id, who, Channel.API, body.response, text=body.text)
    return _reply(ctx, outcome)


@router.post(
    "/{task_id}/verify",
    response_model=TaskView,
    responses=_ERRORS,
    summary="Retry a failing verification now (operators)",
)
async def retry_verification(task_id: str, ctx: Ctx, who: Operator) -> Response:
    task = await _visible(ctx, task_id, who)
    if not await verification.retry_now(ctx, task_id):
        raise ApiError(
            409,
            ErrorCode.VERIFICATION_NOT_FAILING,
            f"Task {task_id!r} has no verification waiting for a retry.",
        )
    return json_response(view_of(task, ctx.sealer, ctx.settings.base_url()).model_dump_json())


@router.post("/{task_id}/claim", response_model=TaskView, responses=_TASK_200, summary="Claim")
async def claim_task(task_id: str, ctx: Ctx, who: Human) -> Response:
    return _reply(ctx, await answers.claim(ctx, task_id, who, Channel.API))


class CancelRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


@router.post("/{task_id}/cancel", response_model=TaskView, responses=_TASK_200, summary="Cancel")
async def cancel_task(
    task_id: str, ctx: Ctx, who: AnyPrincipal, body: CancelRequest | None = None
) -> Response:
    reason = body.reason if body else None
    return _reply(ctx, await answers.cancel(ctx, task_id, who, Channel.API, reason))
