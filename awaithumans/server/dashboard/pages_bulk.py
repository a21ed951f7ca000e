"""Bulk answer: one answer for several open tasks of the same form. Works without JavaScript.

The queue's checkboxes send the chosen ids to ``GET /bulk`` (a page that changes nothing: the
tasks, and the shared form to fill in once); its form posts to ``POST /bulk`` (CSRF), which
answers each task through the normal answer path (:func:`services.answers.answer`, channel
dashboard), so every rule applies to each task on its own: visibility, assignee, approvers
and votes, state, the response schema, the verifier. The page then shows one result per task:
answered, or refused with the reason.

Two rules are the bulk answer's own:

* **One form.** The tasks must share their form (the form definition and the response
  schema): an answer is given to a form, and one that fits one form need not fit another.
  Tasks of different forms are refused together, and the page says which form each has.
* **Opened first.** A person answers in bulk only tasks they have opened (a ``task_views``
  row, see :mod:`services.first_view`): nobody decides a task they have never looked at
  because it sat next to others. A task not opened is refused (``TASK_NOT_OPENED``) while
  the others land.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from sqlalchemy import RowMapping, and_, select
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from awaithumans.core._codes import ErrorCode
from awaithumans.core._forms import FormDefinition
from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.dashboard.access import ctx_of, page_user, require_user
from awaithumans.server.dashboard.csrf import CSRF_FIELD, csrf_ok
from awaithumans.server.dashboard.forms import initial_values, parse_submission, widgets_for
from awaithumans.server.dashboard.render import render
from awaithumans.server.db.models import TaskRow, TaskViewRow, UserRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.principals import Principal
from awaithumans.server.services import answers, votes
from awaithumans.server.services.approvers import NO_GROUPS, own_groups, sees_as_approver
from awaithumans.server.services.form_input import field_errors, load_form
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.policy import policy_of

router = APIRouter(include_in_schema=False)

#: At most this many tasks in one bulk answer: a page of the queue.
MAX_TASKS = 50
ID_FIELD = "id"

Outcome = Literal["answered", "checking", "recorded", "refused", "invalid"]

# How each outcome is shown: its words and its pill.
OUTCOME_LABEL: dict[Outcome, tuple[str, str]] = {
    "answered": ("Answered", "pill-ok"),
    "checking": ("Being checked", "pill-warn"),
    "recorded": ("Recorded", "pill-ok"),
    "refused": ("Refused", "pill-danger"),
    "invalid": ("Not recorded", "pill-danger"),
}


@dataclass(frozen=True, slots=True)
class Chosen:
    """One id the person chose: the task (None when unknown), whether they may see it,
    whether they opened it, and its assignee's name."""

    id: str
    task: TaskRecord | None
    visible: bool
    opened: bool
    assignee: str | None

    @property
    def title(self) -> str:
        return self.task.task if self.task is not None and self.visible else self.id

    @property
    def link(self) -> str | None:
        return f"/task?id={self.id}" if self.visible else None


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one task of the bulk answer."""

    id: str
    title: str
    link: str | None
    outcome: Outcome
    reason: str | None = None
    code: str | None = None

    @property
    def label(self) -> str:
        return OUTCOME_LABEL[self.outcome][0]

    @property
    def pill(self) -> str:
        return OUTCOME_LABEL[self.outcome][1]


@dataclass(frozen=True, slots=True)
class FormGroup:
    """Tasks that share one form, for the page that refuses mixed forms."""

    fields: str
    titles: list[str]


def form_key(task: TaskRecord) -> str:
    """What makes two tasks' forms the same: the form shown and the schema it is checked
    against, in a canonical encoding."""
    shown = load_form(task.form_definition, task.response_schema)
    canonical = json.dumps(
        {"form": shown.model_dump(mode="json"), "schema": task.response_schema},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def chosen_ids(values: Sequence[str]) -> tuple[list[str], str | None]:
    """The distinct task ids chosen, in the order given; or why the choice cannot go on."""
    ids = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    bad = next((i for i in ids if not answers.TASK_ID.match(i)), None)
    if bad is not None:
        shown = bad if len(bad) <= 40 else bad[:40] + "…"
        return [], f"“{shown}” is not a task id: select tasks in the queue."
    if not ids:
        return [], "Select at least one task in the queue, then choose “Answer selected”."
    if len(ids) > MAX_TASKS:
        return [], f"Select at most {MAX_TASKS} tasks to answer together."
    return ids, None


async def load_chosen(ctx: ServerContext, ids: Sequence[str], who: Principal) -> list[Chosen]:
    """The chosen tasks in one query: each with its assignee and this person's view.

    Visible as on the task page: what :func:`answers.can_see` allows, and the tasks whose
    approvers list this person (they may answer them whoever is assigned)."""
    found: dict[str, RowMapping] = {}
    if ids:
        query = (
            select(
                TaskRow.__table__,
                UserRow.display_name.label("assignee_name"),
                UserRow.email.label("assignee_email"),
                TaskViewRow.first_at.label("opened_at"),
            )
            .outerjoin(UserRow, UserRow.id == TaskRow.assigned_to_user_id)
            .outerjoin(
                TaskViewRow,
                and_(TaskViewRow.task_id == TaskRow.id, TaskViewRow.user_id == who.id),
            )
            .where(TaskRow.id.in_(ids))
        )
        async with ctx.reader.connect() as conn:
            found = {row["id"]: row for row in (await conn.execute(query)).mappings()}
    tasks = {task_id: TaskRecord.from_row(row) for task_id, row in found.items()}
    groups = NO_GROUPS
    if any(policy_of(t).restricts_answerers for t in tasks.values()):
        groups = await own_groups(ctx.reader, who)
    chosen = []
    for task_id in ids:
        task = tasks.get(task_id)
        if task is None:
            chosen.append(Chosen(task_id, None, False, False, None))
            continue
        row = found[task_id]
        chosen.append(
            Chosen(
                task_id,
                task,
                answers.can_see(who, task) or sees_as_approver(who, task, groups),
                row["opened_at"] is not None,
                row["assignee_name"] or row["assignee_email"],
            )
        )
    return chosen


def _not_yours(c: Chosen) -> Result:
    return Result(
        c.id,
        c.title,
        c.link,
        "refused",
        "This task isn't assigned to you any more, so your answer was not recorded."
        if c.opened
        # Never seen, and not to be seen: as missing as an unknown id.
        else "There is no such task, or it is not yours to answer.",
        ErrorCode.NOT_ASSIGNED_TO_YOU if c.opened else ErrorCode.TASK_NOT_FOUND,
    )


def refused_before(c: Chosen) -> Result | None:
    """The bulk answer's own refusals, before the answer path's."""
    if c.task is None or not c.visible:
        return _not_yours(c)
    if not c.opened:
        return Result(
            c.id,
            c.title,
            c.link,
            "refused",
            "You have not opened this task: open it and read it before answering it "
            "together with others.",
            ErrorCode.TASK_NOT_OPENED,
        )
    return None


_STATE_CODES = frozenset(
    {ErrorCode.TASK_ALREADY_TERMINAL, ErrorCode.INVALID_TRANSITION, ErrorCode.TASK_ALREADY_CLAIMED}
)


def refusal_reason(refusal: answers.Refusal) -> str:
    """The reason a refused task shows, in the page's words where it has them."""
    current = refusal.current
    if refusal.code in _STATE_CODES and current is not None:
        return f"This task is {current.value.replace('_', ' ')}, so your answer was not recorded."
    if refusal.taken_by is not None:  # offered to several people, and another took it
        return f"{refusal.taken_by} took this task, so your answer was not recorded."
    if refusal.code is ErrorCode.NOT_ASSIGNED_TO_YOU:
        return "This task isn't assigned to you, so your answer was not recorded."
    return refusal.message


def vote_progress(done: answers.Done) -> str | None:
    """What a counted vote says of a task that is still deciding: "1 of 2 approvals"
    (from the votes the answer path returned, this one last)."""
    if done.approvals is None:
        return None
    approvals = votes.Tally.of(done.approvals).approvals
    needed = policy_of(done.task).approvals_required
    return f"Your vote was counted: {approvals} of {needed} approvals so far."


def result_of(
    c: Chosen,
    outcome: answers.Done | answers.Refusal | answers.Invalid,
    progress: str | None = None,
) -> Result:
    if isinstance(outcome, answers.Refusal):
        if outcome.code is ErrorCode.TASK_NOT_FOUND:
            return _not_yours(c)
        return Result(c.id, c.title, c.link, "refused", refusal_reason(outcome), outcome.code.value)
    if isinstance(outcome, answers.Invalid):
        return Result(
            c.id,
            c.title,
            c.link,
            "invalid",
            "The answer does not fit this task's form; see the problems above.",
            ErrorCode.SCHEMA_VALIDATION_FAILED,
        )
    status = outcome.task.status
    if status is TaskStatus.COMPLETED:
        return Result(c.id, c.title, c.link, "answered")
    if status is TaskStatus.SUBMITTED:
        return Result(
            c.id, c.title, c.link, "checking", "A verifier checks the answer before it stands."
        )
    # Recorded without ending the task (one approval of several, say).
    reason = progress or f"Your answer was recorded; the task is {status.value.replace('_', ' ')}."
    return Result(c.id, c.title, c.link, "recorded", reason)


def form_groups(chosen: Sequence[Chosen]) -> list[FormGroup]:
    """The chosen tasks a person may answer, by form (one group: they can be answered
    together)."""
    groups: dict[str, FormGroup] = {}
    for c in chosen:
        if c.task is None or not c.visible:
            continue
        key = form_key(c.task)
        if key not in groups:
            form = load_form(c.task.form_definition, c.task.response_schema)
            fields = ", ".join(f.label for f in form.fields) or "no fields"
            groups[key] = FormGroup(fields, [])
        groups[key].titles.append(c.task.task)
    return list(groups.values())


def ids_of(chosen: Sequence[Chosen]) -> list[str]:
    return [c.id for c in chosen]


def _first_form(chosen: Sequence[Chosen]) -> tuple[FormDefinition, TaskRecord] | None:
    for c in chosen:
        if c.task is not None and c.visible:
            return load_form(c.task.form_definition, c.task.response_schema), c.task
    return None


def _posted(form: FormData) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out.setdefault(key, []).append(value)
    return out


def _page(
    request: Request,
    chosen: Sequence[Chosen],
    *,
    values: Mapping[str, Sequence[str]] | None = None,
    errors: Mapping[str, str] | None = None,
    top_errors: Sequence[str] = (),
    results: Sequence[Result] = (),
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    groups = form_groups(chosen)
    if len(groups) > 1 and problem is None:
        problem = (
            "These tasks have different forms, so one answer cannot fit them all. "
            "Go back and select tasks of one form."
        )
        status_code = 422
    # The ids the form answers: every chosen one (each gets its result, refusals included);
    # after an answer that did not fit, the tasks it did not fit.
    form_ids = [r.id for r in results if r.outcome == "invalid"] if results else ids_of(chosen)
    first = _first_form(chosen) if len(groups) == 1 and form_ids else None
    widgets: list[Any] = []
    form = None
    if first is not None:
        form = first[0]
        # The form's own defaults: one task's suggested answer is not the others'.
        widgets = widgets_for(form, values or initial_values(form), errors)
    context: dict[str, Any] = {
        "chosen": chosen,
        "form_ids": form_ids,
        "form": form,
        "widgets": widgets,
        "top_errors": list(top_errors),
        "error_count": len(errors or {}) + len(top_errors),
        "results": list(results),
        "problem": problem,
        "groups": groups if len(groups) > 1 else [],
        "landed": sum(1 for r in results if r.outcome in ("answered", "checking", "recorded")),
        "refused": sum(1 for r in results if r.outcome == "refused"),
        "back_url": "/",
        "bulk_url": "/bulk?" + urlencode([(ID_FIELD, c.id) for c in chosen]),
    }
    return render(request, "bulk.html", context, status_code=status_code)


@router.get("/bulk")
async def bulk_page(request: Request) -> Response:
    """The chosen tasks and the shared form (or why they cannot be answered together)."""
    who = await require_user(request)
    ids, problem = chosen_ids(request.query_params.getlist(ID_FIELD))
    if problem is not None:
        return _page(request, [], problem=problem, status_code=422)
    chosen = await load_chosen(ctx_of(request), ids, who)
    return _page(request, chosen)


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


@router.post("/bulk")
async def bulk_answer(request: Request) -> Response:
    """Answer each chosen task with the one answer posted; one result per task."""
    ctx = ctx_of(request)
    form_data = await request.form()
    posted = _posted(form_data)
    who = await page_user(request)
    if who is None:
        back = "/bulk?" + urlencode([(ID_FIELD, i) for i in posted.get(ID_FIELD, [])][:MAX_TASKS])
        return RedirectResponse(f"/login?next={quote(back, safe='')}", status_code=303)
    if not csrf_ok(ctx.csrf_keys, request, form_data.get(CSRF_FIELD)):
        return _expired_form(request)
    ids, problem = chosen_ids(posted.get(ID_FIELD, []))
    if problem is not None:
        return _page(request, [], problem=problem, status_code=422)
    chosen = await load_chosen(ctx, ids, who)
    if len(form_groups(chosen)) > 1:
        return _page(request, chosen, values=posted)
    first = _first_form(chosen)
    if first is None:
        # Nothing here this person may answer: each id says why.
        return _page(request, chosen, results=[_not_yours(c) for c in chosen])
    form, task = first
    response, unreadable = parse_submission(form, posted, schema=task.response_schema)

    async def one(c: Chosen) -> tuple[Result, answers.Invalid | None]:
        early = refused_before(c)
        if early is not None:
            return early, None
        outcome = await answers.answer(
            ctx, c.id, who, Channel.DASHBOARD, response, unreadable=unreadable
        )
        progress = None
        if isinstance(outcome, answers.Done) and not (
            outcome.task.status.is_terminal or outcome.task.status is TaskStatus.SUBMITTED
        ):
            progress = vote_progress(outcome)
        invalid = outcome if isinstance(outcome, answers.Invalid) else None
        return result_of(c, outcome, progress), invalid

    # All at once: the writer commits the answers together, each still its own move.
    done = await asyncio.gather(*(one(c) for c in chosen))
    results = [r for r, _ in done]
    invalid = next((i for _, i in done if i is not None), None)
    if invalid is None:
        return _page(request, chosen, results=results)
    by_field, general = field_errors(form, invalid.problems)
    return _page(
        request,
        chosen,
        values=posted,
        errors={**by_field, **invalid.unreadable},
        top_errors=general,
        results=results,
        status_code=422,
    )
