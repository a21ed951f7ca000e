"""The task page: read a task, answer it, claim or cancel it. Works without JavaScript.

``GET /task?id=…`` shows the task; the three actions are plain form posts that answer with a
303 back to the task, or re-render the page with what went wrong (and, for an answer, with
what the person typed). A page view costs one query for the task and its assignee, one for
its audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import MAX_REPLY_TEXT, ApprovalView, TaskStatus
from awaithumans.server.api.errors import error_response
from awaithumans.server.context import ServerContext
from awaithumans.server.dashboard.access import PageError, ctx_of, page_user, require_user
from awaithumans.server.dashboard.csrf import CSRF_FIELD, csrf_ok
from awaithumans.server.dashboard.forms import initial_values, parse_submission, widgets_for
from awaithumans.server.dashboard.render import render
from awaithumans.server.dashboard.verification_view import verification_view
from awaithumans.server.db.models import AuditRow, OutboxRow, TaskRow, UserRow
from awaithumans.server.db.records import AuditRecord, TaskRecord
from awaithumans.server.principals import Principal
from awaithumans.server.services import answers, candidates, verification, votes
from awaithumans.server.services.approvers import groups_for, sees_as_approver
from awaithumans.server.services.display import answer_items, display
from awaithumans.server.services.events import NOTIFY
from awaithumans.server.services.first_view import record_view
from awaithumans.server.services.form_input import field_errors, load_form
from awaithumans.server.services.lifecycle import ANSWERABLE, Channel
from awaithumans.server.services.memberships import Groups
from awaithumans.server.services.policy import policy_of
from awaithumans.server.services.task_actions import may_answer
from awaithumans.server.services.views import default_applied, open_for

router = APIRouter(include_in_schema=False)

S = TaskStatus
# A task collects a handful of audit rows; this only bounds a pathological one.
MAX_AUDIT_ROWS = 500

PILLS = {
    S.CREATED: "",
    S.NOTIFIED: "",
    S.ASSIGNED: "",
    S.IN_PROGRESS: "",
    S.SUBMITTED: "pill-warn",
    S.REJECTED: "pill-danger",
    S.COMPLETED: "pill-ok",
    S.TIMED_OUT: "pill-warn",
    S.CANCELLED: "pill-muted",
    S.VERIFICATION_EXHAUSTED: "pill-danger",
}

CLOSED = {
    S.COMPLETED: "This task is already completed",
    S.TIMED_OUT: "This task timed out",
    S.CANCELLED: "This task was cancelled",
    S.VERIFICATION_EXHAUSTED: "This task is closed: its answers failed verification",
    S.SUBMITTED: "An answer to this task is already waiting for verification",
}


@dataclass(frozen=True, slots=True)
class Notice:
    kind: Literal["ok", "warn", "error"]
    text: str


@dataclass(frozen=True, slots=True)
class Loaded:
    """A task, its assignee's name and email (when in the directory), and its audit trail."""

    task: TaskRecord
    assignee_name: str | None = None
    assignee_email: str | None = None
    audit: list[AuditRecord] = field(default_factory=list)
    #: The latest delivery of each notify route: (status, error), by route.
    deliveries: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    #: The viewer's roles and pools, as the approvers rule judged them.
    groups: Groups = field(default_factory=Groups)
    #: A task that needs several approvals: its votes so far, and why the viewer's vote
    #: would not count (``votes.ALREADY_VOTED``, ``votes.REQUESTER_CANNOT_APPROVE``).
    votes: list[ApprovalView] | None = None
    vote_refusal: str | None = None

    @property
    def status(self) -> TaskStatus:
        return self.task.status


def _not_found() -> PageError:
    # Someone else's task and a missing one look the same.
    return PageError(
        404,
        "Task not found",
        "There is no task at this address, or it is not assigned to you. "
        "Check the link, or go back to the queue.",
    )


async def _load(ctx: ServerContext, task_id: str, who: Principal) -> Loaded:
    if not answers.TASK_ID.match(task_id):
        raise _not_found()
    query = (
        select(
            TaskRow.__table__,
            UserRow.display_name.label("assignee_name"),
            UserRow.email.label("assignee_email"),
        )
        .outerjoin(UserRow, UserRow.id == TaskRow.assigned_to_user_id)
        .where(TaskRow.id == task_id)
    )
    async with ctx.engine.connect() as conn:
        found = (await conn.execute(query)).mappings().one_or_none()
        if found is None:
            raise _not_found()
        task = TaskRecord.from_row(found)
        groups = await groups_for(ctx.reader, who, task)
        # A task's approvers see it, assigned to them or not: they may answer it.
        if not (answers.can_see(who, task) or sees_as_approver(who, task, groups)):
            raise _not_found()
        task_votes: list[ApprovalView] | None = None
        vote_refusal = None
        if policy_of(task).counts_votes:
            task_votes = await votes.votes_of(conn, ctx.sealer, task.id)
            vote_refusal = await votes.vote_refusal(conn, ctx.sealer, who, task)
        audit = (
            await conn.execute(
                select(AuditRow.__table__)
                .where(AuditRow.task_id == task_id)
                .order_by(AuditRow.id)
                .limit(MAX_AUDIT_ROWS)
            )
        ).mappings()
        deliveries: dict[str, tuple[str, str | None]] = {}
        if task.notify:
            # Where each notification stands: a route Slack or email could not reach says
            # why here (the task itself was created all the same).
            jobs = await conn.execute(
                select(OutboxRow.target, OutboxRow.status, OutboxRow.last_error)
                .where(OutboxRow.task_id == task_id, OutboxRow.kind == NOTIFY)
                .order_by(OutboxRow.id)
            )
            deliveries = {row.target: (row.status, row.last_error) for row in jobs}
        return Loaded(
            task,
            found["assignee_name"],
            found["assignee_email"],
            [AuditRecord.from_row(a) for a in audit],
            deliveries,
            groups,
            task_votes,
            vote_refusal,
        )


def _assignee(t: Loaded) -> tuple[str | None, str | None, list[str]]:
    """(name, email) of the directory assignee, and emails named but not in the directory."""
    if t.task.assigned_to_user_id is not None:
        return t.assignee_name, t.assignee_email, []
    assign_to = t.task.assign_to or {}
    named = assign_to.get("emails") or [assign_to.get("email") or assign_to.get("user_id")]
    return None, None, [str(n) for n in named if isinstance(n, str)]


def _audit_view(entry: AuditRecord) -> dict[str, Any]:
    detail = entry.detail or {}
    note = None
    if isinstance(detail, Mapping):
        if "approvals" in detail and "required" in detail:
            verb = "approved" if detail.get("approved") else "rejected"
            note = f"Vote: {verb} ({detail['approvals']} of {detail['required']} approvals)"
        elif detail.get("default_applied"):
            note = "The agent's default answer was applied"
        elif detail.get("reason"):
            note = f"Reason: {detail['reason']}"
        elif detail.get("route"):
            note = f"Via {detail['route']}"
        elif detail.get("message"):
            note = str(detail["message"])  # a verifier provider's trouble
        usage = detail.get("usage")
        if detail.get("model") and isinstance(usage, Mapping):
            # What the verdict cost, as the provider counted it.
            tokens = sum(v for v in usage.values() if isinstance(v, int))
            note = f"{note} ({detail['model']}, {tokens:,} tokens)"
    return {
        "at": entry.at,
        "who": entry.actor_label or entry.actor_id or entry.actor_type,
        "action": entry.action.replace("_", " "),
        "from_status": entry.from_status.value if entry.from_status else None,
        "to_status": entry.to_status.value,
        "channel": entry.channel,
        "note": note,
    }


def _state_message(t: Loaded) -> str | None:
    """What the answer area says when there is no form to fill in."""
    status = t.status
    if status is S.TIMED_OUT:
        return "This task timed out before anyone answered it."
    if status is S.CANCELLED:
        last = next((a for a in reversed(t.audit) if a.action == "cancelled"), None)
        who = (last.actor_label or last.actor_id) if last else None
        return f"This task was cancelled{f' by {who}' if who else ''}; it takes no answer."
    if status is S.VERIFICATION_EXHAUSTED:
        return "The answers to this task failed verification too many times; it is closed."
    if status is S.SUBMITTED and t.task.verifier_config is None:
        return "An answer was submitted and is waiting for verification."
    return None


def _page(
    request: Request,
    who: Principal,
    t: Loaded,
    *,
    values: Mapping[str, Sequence[str]] | None = None,
    errors: Mapping[str, str] | None = None,
    top_errors: Sequence[str] = (),
    notice: Notice | None = None,
    reply_text: str | None = None,
    status_code: int = 200,
    template: str = "task.html",
    sequence: int | None = None,
) -> Response:
    context = _context(request, who, t, values, errors, top_errors, notice, reply_text)
    # The change sequence read before the task was: a change in between still refreshes.
    context["sequence"] = ctx_of(request).hub.sequence if sequence is None else sequence
    return render(request, template, context, status_code=status_code)


def _context(
    request: Request,
    who: Principal,
    t: Loaded,
    values: Mapping[str, Sequence[str]] | None = None,
    errors: Mapping[str, str] | None = None,
    top_errors: Sequence[str] = (),
    notice: Notice | None = None,
    reply_text: str | None = None,
) -> dict[str, Any]:
    ctx = ctx_of(request)
    task = t.task
    status = t.status
    form = load_form(task.form_definition, task.response_schema)
    response = open_for(ctx.sealer, task.id, task.response_enc)
    verification, submission = verification_view(ctx.sealer, task, form, who)
    may = who.can_answer and may_answer(who, task, t.groups)
    answerable = status in ANSWERABLE and may and t.vote_refusal is None
    last = submission if status is S.REJECTED else None
    if values is None and answerable:
        # After a rejection the person corrects their answer rather than starting over.
        values = initial_values(form, task.initial_response, last.response if last else None)
    if reply_text is None and last is not None:
        reply_text = last.text
    name, email, unresolved = _assignee(t)
    assignee_label = name or email or (", ".join(unresolved) if unresolved else None)
    someone_else = (task.assigned_to_user_id not in (None, who.id)) or (
        task.assigned_to_user_id is None and unresolved and who.email not in unresolved
    )
    claim_confirm = None
    if someone_else and assignee_label:
        claim_confirm = f"Take this task over from {assignee_label}?"
    payload = None
    if not task.redact_payload:
        payload = display(open_for(ctx.sealer, task.id, task.payload_enc) or {})
    policy = policy_of(task)
    context: dict[str, Any] = {
        "task": task,
        "status": status,
        "pill": PILLS.get(status, ""),
        "terminal": status.is_terminal,
        "answerable": answerable,
        "form": form,
        "widgets": widgets_for(form, values, errors) if values is not None else [],
        "top_errors": list(top_errors),
        "error_count": len(errors or {}) + len(top_errors),
        "notice": notice,
        "state_message": _state_message(t),
        "payload": payload,
        "metadata": display(task.task_metadata) if task.task_metadata else None,
        "answer": answer_items(form, response)
        if status is S.COMPLETED and response is not None
        else None,
        # Nobody answered in time and the agent's on_timeout default stands in.
        "default_answer": answer_items(form, response)
        if response is not None and default_applied(status, response)
        else None,
        "assignee_name": name,
        "assignee_email": email,
        "assignee_unresolved": unresolved,
        "assignee_label": assignee_label,
        "operator_banner": bool(who.is_operator and answerable and someone_else),
        "can_claim": status in answers.CLAIMABLE
        and (
            who.is_operator
            or task.assigned_to_user_id == who.id
            or (policy.restricts_answerers and task.assigned_to_user_id is None and may)
            or candidates.may_take(who, task)
        ),
        "claim_confirm": claim_confirm,
        "can_cancel": who.is_operator and not status.is_terminal,
        "deliveries": t.deliveries,
        "verification": verification,
        "reply_text": reply_text,
        # While the verifier checks an answer, the task view follows the task live; so
        # does a vote in progress for someone with no form to type in (theirs is cast).
        "live_url": f"/ui/task?id={task.id}"
        if status is S.SUBMITTED
        or (t.votes is not None and status in ANSWERABLE and not answerable)
        else None,
        "not_approver": policy.restricts_answerers and not may,
        # Offered to this person too, and another of its candidates took it.
        "taken_by": (name or email)
        if candidates.is_candidate(who, task) and task.assigned_to_user_id not in (None, who.id)
        else None,
        "votes": _votes_view(t, policy.approvals_required),
        "vote_note": _VOTE_NOTES.get(t.vote_refusal or "") if may else None,
        "audit": [_audit_view(a) for a in t.audit],
    }
    return context


_VOTE_NOTES = {
    votes.ALREADY_VOTED: "You already voted on this task; it waits for the other approvers.",
    votes.REQUESTER_CANNOT_APPROVE: "You asked for this approval, so you cannot vote on it.",
}


def _votes_view(t: Loaded, required: int) -> dict[str, Any] | None:
    """The task's approvals as the page shows them: "1 of 2 approvals" and who voted how."""
    if t.votes is None:
        return None
    approvals = sum(1 for v in t.votes if v.approved)
    return {
        "required": required,
        "approvals": approvals,
        "rejections": len(t.votes) - approvals,
        "progress": f"{approvals} of {required} approvals",
        "entries": [
            {
                "who": v.display_name or v.email or v.user_id,
                "email": v.email if v.email != v.display_name else None,
                "approved": v.approved,
                "channel": v.channel,
                "at": v.at,
            }
            for v in t.votes
        ],
    }


@router.get("/task")
async def task_page(request: Request, task_id: Annotated[str, Query(alias="id")] = "") -> Response:
    who = await require_user(request)
    sequence = ctx_of(request).hub.sequence
    loaded = await _load(ctx_of(request), task_id, who)
    await record_view(ctx_of(request), loaded.task, who)
    return _page(request, who, loaded, sequence=sequence)


@router.get("/ui/task")
async def task_fragment(
    request: Request, task_id: Annotated[str, Query(alias="id")] = ""
) -> Response:
    """The task view alone (what the page embeds), for live updates while a verifier checks."""
    who = await page_user(request)
    if who is None:
        return error_response(401, ErrorCode.UNAUTHENTICATED, "Your session has ended.")
    loaded = await _load(ctx_of(request), task_id, who)
    return _page(request, who, loaded, template="_task_body.html")


# -- actions ---------------------------------------------------------------------------


def _task_url(task_id: str) -> str:
    return f"/task?id={task_id}"


def _posted(form: FormData) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out.setdefault(key, []).append(value)
    return out


def _expired_form(request: Request) -> Response:
    return render(
        request,
        "message.html",
        {
            "title": "Please try again",
            "message": "This form expired or did not come from this site. Go back, reload the "
            "page and submit it again.",
        },
        status_code=403,
    )


async def _begin(request: Request) -> tuple[Principal, FormData, str] | Response:
    """Who posts, the form and the task id; or the response that ends the request early."""
    ctx = ctx_of(request)
    form = await request.form()
    task_id = str(form.get("id", ""))
    who = await page_user(request)
    if who is None:
        back = _task_url(task_id) if answers.TASK_ID.match(task_id) else "/"
        return RedirectResponse(f"/login?next={quote(back, safe='')}", status_code=303)
    if not csrf_ok(ctx.csrf_keys, request, form.get(CSRF_FIELD)):
        return _expired_form(request)
    return who, form, task_id


OUTCOME = {
    "answer": "your answer was not recorded",
    "claim": "it cannot be claimed",
    "cancel": "it cannot be cancelled",
}


def _closed(status: TaskStatus, verb: str) -> str:
    return f"{CLOSED.get(status, 'This task is closed')}, so {OUTCOME[verb]}."


def _refusal_text(refusal: answers.Refusal, verb: str) -> str:
    """What the page says about a refused action, in its own words where it has them."""
    current = refusal.current
    if current is not None and current in CLOSED and refusal.code in _STATE_CODES:
        return _closed(current, verb)
    if refusal.taken_by is not None:
        return f"{refusal.taken_by} took this task, so {OUTCOME[verb]}."
    if refusal.code == ErrorCode.NOT_ASSIGNED_TO_YOU and verb == "answer":
        return "This task isn't assigned to you, so your answer was not recorded."
    if refusal.code == ErrorCode.NOT_AN_APPROVER:
        done = "your answer was not recorded" if verb == "answer" else f"you cannot {verb} it"
        return f"Only this task's approvers may decide it and you are not one of them, so {done}."
    if refusal.code == ErrorCode.ALREADY_VOTED:
        return "You already voted on this task; your first vote stands."
    if refusal.code == ErrorCode.REQUESTER_CANNOT_APPROVE:
        return "You asked for this approval, so your vote cannot count towards it."
    if refusal.code in (ErrorCode.VERIFIER_API_KEY_MISSING, ErrorCode.VERIFIER_UNAVAILABLE):
        return f"Your answer was not recorded. {refusal.message}"
    return refusal.message


# Refusals that only say "not in a state for this" (the page words those itself).
_STATE_CODES = frozenset(
    {ErrorCode.TASK_ALREADY_TERMINAL, ErrorCode.INVALID_TRANSITION, ErrorCode.TASK_ALREADY_CLAIMED}
)


async def _after(
    request: Request,
    who: Principal,
    task_id: str,
    outcome: answers.Done | answers.Refusal,
    verb: str,
) -> Response:
    if isinstance(outcome, answers.Refusal):
        loaded = await _load(ctx_of(request), task_id, who)
        notice = Notice("error", _refusal_text(outcome, verb))
        return _page(request, who, loaded, notice=notice, status_code=outcome.status_code)
    return RedirectResponse(_task_url(task_id), status_code=303)


@router.post("/task/submit")
async def submit_answer(request: Request) -> Response:
    begun = await _begin(request)
    if isinstance(begun, Response):
        return begun
    who, form_data, task_id = begun
    ctx = ctx_of(request)
    t = await _load(ctx, task_id, who)
    posted = _posted(form_data)
    text = None
    if form_data.get("mode") == "text":
        # "In your own words": the verifier reads the reply into the response schema.
        text = str(form_data.get("reply_text", ""))[:MAX_REPLY_TEXT]
        outcome = await answers.answer(ctx, task_id, who, Channel.DASHBOARD, None, text=text)
        values = None
    else:
        form = load_form(t.task.form_definition, t.task.response_schema)
        response, unreadable = parse_submission(form, posted, schema=t.task.response_schema)
        outcome = await answers.answer(
            ctx, task_id, who, Channel.DASHBOARD, response, unreadable=unreadable
        )
        values = posted
    if isinstance(outcome, answers.Invalid):
        if text is not None:
            notice = Notice("error", "Your reply was empty: write your answer, then send it.")
            return _page(request, who, t, notice=notice, reply_text=text, status_code=422)
        by_field, general = field_errors(form, outcome.problems)
        # A field's own parse error says more than the schema's.
        errors = {**by_field, **outcome.unreadable}
        return _page(
            request, who, t, values=posted, errors=errors, top_errors=general, status_code=422
        )
    if isinstance(outcome, answers.Refusal):
        if outcome.code != ErrorCode.TASK_NOT_FOUND:
            t = await _load(ctx, task_id, who)
        notice = Notice("error", _refusal_text(outcome, "answer"))
        return _page(
            request,
            who,
            t,
            values=values,
            notice=notice,
            reply_text=text,
            status_code=outcome.status_code,
        )
    return RedirectResponse(_task_url(task_id), status_code=303)


@router.post("/task/verify")
async def retry_verification(request: Request) -> Response:
    """An operator asks for the next try of a verifier that keeps failing, now."""
    begun = await _begin(request)
    if isinstance(begun, Response):
        return begun
    who, _form, task_id = begun
    ctx = ctx_of(request)
    loaded = await _load(ctx, task_id, who)
    if not who.is_operator:
        notice = Notice("error", "Only operators can retry a verification.")
        return _page(request, who, loaded, notice=notice, status_code=403)
    if not await verification.retry_now(ctx, task_id):
        notice = Notice("warn", "No verification is waiting for a retry on this task.")
        return _page(request, who, loaded, notice=notice, status_code=409)
    return RedirectResponse(_task_url(task_id), status_code=303)


@router.post("/task/claim")
async def claim_task(request: Request) -> Response:
    begun = await _begin(request)
    if isinstance(begun, Response):
        return begun
    who, _form, task_id = begun
    ctx = ctx_of(request)
    await _load(ctx, task_id, who)  # 404 for tasks this user may not see
    outcome = await answers.claim(ctx, task_id, who, Channel.DASHBOARD)
    return await _after(request, who, task_id, outcome, "claim")


@router.post("/task/cancel")
async def cancel_task(request: Request) -> Response:
    begun = await _begin(request)
    if isinstance(begun, Response):
        return begun
    who, form_data, task_id = begun
    ctx = ctx_of(request)
    await _load(ctx, task_id, who)
    reason = str(form_data.get("reason", "")).strip()[:500] or None
    outcome = await answers.cancel(ctx, task_id, who, Channel.DASHBOARD, reason)
    return await _after(request, who, task_id, outcome, "cancel")
