"""The pages behind a mail's one-click buttons: confirm (GET), then answer (POST).

A GET (or HEAD) only shows what the button would answer, with a box for notes when the
form has text fields: link scanners, prefetchers and previews follow links, and must never
answer. The page's POST, with its CSRF token, answers through the answer path as the
recipient the link was minted for, on that task alone. Every outcome is a page in words:
recorded, being checked, already answered, assigned to someone else, expired.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from awaithumans.core._codes import ErrorCode
from awaithumans.core._forms import FormField
from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.dashboard.csrf import CSRF_FIELD, csrf_ok
from awaithumans.server.dashboard.render import render
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.notify.email.links import (
    PATH,
    AnswerLink,
    label_of,
    one_click_field,
    read_answer_link,
    text_fields,
)
from awaithumans.server.security import Door
from awaithumans.server.security.signing import ExpiredTokenError, TokenError
from awaithumans.server.services.answers import (
    Done,
    Invalid,
    Refusal,
    answer_refusal_of,
    load_task,
)
from awaithumans.server.services.answers import answer as answer_task
from awaithumans.server.services.directory import DirectoryUser, active_user, as_principal
from awaithumans.server.services.display import outcome_line
from awaithumans.server.services.first_view import record_view
from awaithumans.server.services.form_input import load_form
from awaithumans.server.services.handoff import task_link
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.policy import policy_of
from awaithumans.server.web import door_refusal

# The pages' routes, relative to the channel's prefix (/api/channels/email).
ROUTE = PATH.rsplit("/", 1)[1]


class _Stop(Exception):
    """The link cannot answer: show this page instead."""

    def __init__(self, title: str, message: str, status_code: int, link: str | None = None):
        super().__init__(title)
        self.title = title
        self.message = message
        self.status_code = status_code
        self.link = link


def answer_router(ctx: ServerContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(f"/{ROUTE}")
    async def confirm(request: Request, t: str = "") -> Response:
        if (refused := _over_limit(request)) is not None:
            return refused
        try:
            link, task, user, field = await _open(ctx, t)
        except _Stop as stop:
            return _stopped(request, stop)
        await record_view(ctx, task, as_principal(user, scope_task_id=task.id))
        return _confirm_page(request, ctx, t, link, task, user, field, {}, {})

    @router.post(f"/{ROUTE}")
    async def submit(request: Request) -> Response:
        if (refused := _over_limit(request)) is not None:
            return refused
        form = await request.form()
        token = str(form.get("t") or "")
        try:
            link, task, user, field = await _open(ctx, token)
        except _Stop as stop:
            return _stopped(request, stop)
        texts = text_fields(load_form(task.form_definition, task.response_schema), field.name)
        values = {f.name: str(form.get(f.name) or "").strip() for f in texts}
        if not csrf_ok(ctx.csrf_keys, request, form.get(CSRF_FIELD)):
            # A stale page (or cookies off): nothing recorded, the same page to confirm again.
            errors = {"": "Please confirm again: this page had expired."}
            return _confirm_page(request, ctx, token, link, task, user, field, values, errors)
        response: dict[str, Any] = {field.name: link.value}
        response.update({name: value for name, value in values.items() if value})
        who = as_principal(user, scope_task_id=task.id)
        result = await answer_task(ctx, task.id, who, Channel.EMAIL, response)
        if isinstance(result, Invalid):
            errors = _errors(result, texts)
            return _confirm_page(request, ctx, token, link, task, user, field, values, errors)
        if isinstance(result, Done):
            choice = f"{field.label}: {label_of(field, link.value)}"
            if result.approvals is not None and not result.task.status.is_terminal:
                approved = sum(1 for v in result.approvals if v.approved)
                required = policy_of(result.task).approvals_required
                title = "Vote recorded"
                message = (
                    f"You answered {choice}. The task has {approved} of {required} approvals; "
                    "it completes when enough approvers have voted."
                )
            elif result.task.status is TaskStatus.SUBMITTED:
                title = "Answer received: being checked"
                message = (
                    f"You answered {choice}. A verifier checks it now; if it needs more, "
                    "the task page says why."
                )
            else:
                title = "Answer recorded"
                message = f"You answered {choice}. Thank you: you can close this page."
            return render(request, "message.html", _page(ctx, task, user, title, message))
        if result.code is ErrorCode.TASK_ALREADY_TERMINAL:
            fresh = await load_task(ctx, task.id)
            return _stopped(request, _answered(fresh or task))
        if result.code in _POLICY or result.code is ErrorCode.NOT_ASSIGNED_TO_YOU:
            return _stopped(request, _refused(result, _open_url(ctx, task, user)))
        return _stopped(request, _Stop("Not recorded", result.message, result.status_code))

    return router


async def _open(
    ctx: ServerContext, token: str
) -> tuple[AnswerLink, TaskRecord, DirectoryUser, FormField]:
    """The link, its task, its person and the field it answers, if it may still answer."""
    try:
        link = read_answer_link(ctx.keyring, token)
    except ExpiredTokenError:
        raise _Stop(
            "This link has expired",
            "One-click answers work for a limited time. Open the task to answer it.",
            400,
        ) from None
    except TokenError:
        raise _Stop(
            "This link is not valid", "It may have been cut short when it was copied.", 400
        ) from None
    task = await load_task(ctx, link.task_id)
    user = await active_user(ctx.engine, link.user_id)
    if task is None or user is None:
        raise _Stop("This link is not valid", "The task or its recipient is gone.", 404)
    there = _open_url(ctx, task, user)
    if task.status.is_terminal:
        raise _answered(task, there)
    if task.status is TaskStatus.SUBMITTED:
        raise _Stop(
            "An answer is being checked",
            "Someone answered this task and a verifier is checking the answer.",
            409,
            there,
        )
    if task.verification_attempt != link.attempt:
        reason = f" ({task.verification_reason})" if task.verification_reason else ""
        raise _Stop(
            "This link was used",
            f"An earlier answer was turned down by the verifier{reason}. "
            "Open the task to answer again.",
            409,
            there,
        )
    # A mail makes its recipient the assignee of a task that has none; a link is never
    # more than that person's own right to answer (not an operator's): the assignee's, or
    # a listed approver's for a task with approvers.
    refusal = await answer_refusal_of(ctx, as_principal(user, scope_task_id=task.id), task)
    if refusal is not None:
        raise _refused(refusal, there)
    field = one_click_field(load_form(task.form_definition, task.response_schema))
    if field is None or field.name != link.field:
        raise _Stop("This link is not valid", "It does not match the task's form.", 400)
    return link, task, user, field


def _over_limit(request: Request) -> Response | None:
    """Count this request against its address's one-click limit; the page to answer
    instead when over it (nothing is read or answered then)."""
    refusal = door_refusal(request, Door.ONE_CLICK)
    if refusal is None:
        return None
    values = {"title": "Please wait", "message": refusal.message, "link": None}
    return render(
        request, "message.html", values, status_code=refusal.status_code, headers=refusal.headers
    )


def _answered(task: TaskRecord, there: str | None = None) -> _Stop:
    return _Stop("Already answered", f"{outcome_line(task)}. Nothing more to do.", 409, there)


def _elsewhere() -> _Stop:
    return _Stop("Not yours to answer", "This task is assigned to someone else.", 403)


# The task's approval policy refusing this person, in a page's words.
_POLICY = {
    ErrorCode.NOT_AN_APPROVER: (
        "Not yours to answer",
        "Only this task's approvers can answer it, and you are not one of them.",
    ),
    ErrorCode.ALREADY_VOTED: (
        "You already voted",
        "Your vote on this task is recorded; it waits for the other approvers.",
    ),
    ErrorCode.REQUESTER_CANNOT_APPROVE: (
        "Not yours to approve",
        "You asked for this approval, so your vote cannot count towards it.",
    ),
}


def _refused(refusal: Refusal, there: str | None) -> _Stop:
    """Why this person may not answer, as a page (nothing was recorded)."""
    if refusal.code in _POLICY:
        title, message = _POLICY[refusal.code]
        return _Stop(title, message, refusal.status_code, there)
    if refusal.taken_by is not None:  # offered to several people, and another took it
        message = f"{refusal.taken_by} took this task, so your answer was not recorded."
        return _Stop("Taken by someone else", message, refusal.status_code, there)
    if refusal.code is ErrorCode.NOT_ASSIGNED_TO_YOU:
        return _elsewhere()
    return _Stop("Not recorded", refusal.message, refusal.status_code, there)


def _stopped(request: Request, stop: _Stop) -> Response:
    values: dict[str, Any] = {"title": stop.title, "message": stop.message}
    values["link"] = (stop.link, "Open the task") if stop.link else ("/login", "Sign in")
    return render(request, "message.html", values, status_code=stop.status_code)


def _page(
    ctx: ServerContext, task: TaskRecord, user: DirectoryUser, title: str, message: str
) -> dict[str, Any]:
    return {
        "title": title,
        "message": message,
        "link": (_open_url(ctx, task, user), "Open the task"),
    }


def _open_url(ctx: ServerContext, task: TaskRecord, user: DirectoryUser) -> str:
    return task_link(ctx.keyring, ctx.settings.base_url(), task.id, user.id, task.timeout_at)


def _confirm_page(
    request: Request,
    ctx: ServerContext,
    token: str,
    link: AnswerLink,
    task: TaskRecord,
    user: DirectoryUser,
    field: FormField,
    values: dict[str, str],
    errors: dict[str, str],
) -> Response:
    form = load_form(task.form_definition, task.response_schema)
    return render(
        request,
        "email_answer.html",
        {
            "task_title": task.task,
            "field_label": field.label,
            "choice": label_of(field, link.value),
            "texts": text_fields(form, field.name),
            "token": token,
            "action": PATH,
            "open_url": _open_url(ctx, task, user),
            "values": values,
            "errors": errors,
        },
        status_code=400 if errors else 200,
    )


def _errors(invalid: Invalid, texts: list[FormField]) -> dict[str, str]:
    """The schema's problems by field; anything else under the form as a whole."""
    names = {f.name for f in texts}
    errors: dict[str, str] = {}
    for problem in invalid.problems:
        loc = problem.get("loc") or []
        name = str(loc[0]) if loc else ""
        errors.setdefault(name if name in names else "", str(problem.get("msg")))
    for name, message in invalid.unreadable.items():
        errors.setdefault(name if name in names else "", message)
    return errors
