"""The answer path: every channel answers, claims and cancels tasks through these three calls.

The JSON API, the dashboard, and the channels that take answers where people are (Slack's
modal and thread replies, email links) all act as an authenticated principal through a
named :class:`Channel`, and get one typed outcome back:

* :class:`Done`: the task moved; here it is, as it is now.
* :class:`Refusal`: it did not, for a reason with a stable code (and the HTTP status the
  API answers it with); nothing changed.
* :class:`Invalid`: the answer does not fit the task's response schema; nothing changed.

The checks run in one order for everyone: the task is visible to the principal, the
principal may answer it (its assignee, or an operator; for a task with approvers only
they, and operators unless the policy says otherwise: :mod:`approvers`), the task still
takes answers, the
answer matches the response schema, and the verifier gate (its provider installed and
keyed on this server; then the answer waits for its verdict). The state change itself goes
through :mod:`lifecycle` (compare-and-set, audit row, outbox rows in one transaction), which
checks state and assignment again against the row it updates: a race lost between these
checks and the write is refused the same way. A task that needs several approvals takes
each answer as a vote (:mod:`votes`), and completes on the deciding one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import ApprovalView, TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import TaskRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal
from awaithumans.server.services import candidates, votes
from awaithumans.server.services.approvers import (
    NOT_AN_APPROVER,
    NOT_ASSIGNED_TO_YOU,
    answer_refusal,
    groups_for,
    sees_as_approver,
)
from awaithumans.server.services.lifecycle import ANSWERABLE, Channel, Moved, Refused
from awaithumans.server.services.memberships import Groups
from awaithumans.server.services.policy import policy_of
from awaithumans.server.services.task_actions import (
    Cancel,
    Claim,
    Complete,
    TaskAction,
)
from awaithumans.server.services.verification import Submission, Submit
from awaithumans.server.services.verifier_gate import config_of, refuse_submit

TASK_ID = re.compile(r"^tsk_[0-9a-f]{24}$")
CLAIMABLE = frozenset({TaskStatus.CREATED, TaskStatus.NOTIFIED, TaskStatus.ASSIGNED})


@dataclass(frozen=True, slots=True)
class Done:
    """The task moved. ``response`` is the answer just given (for ``answer``);
    ``approvals`` the task's votes, this one last (a task that needs several approvals)."""

    task: TaskRecord
    response: dict[str, Any] | None = None
    approvals: list[ApprovalView] | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Nothing changed, because of ``code``; ``current`` is the task's status, if it exists.

    ``message`` is worded for the API; channels that speak to people in their own words
    (the dashboard) choose theirs from ``code`` and ``current``.
    """

    status_code: int
    code: ErrorCode
    message: str
    current: TaskStatus | None = None
    #: Who took the task offered to this person as well (``services/candidates.py``).
    taken_by: str | None = None

    def error(self) -> ApiError:
        return ApiError(self.status_code, self.code, self.message)


@dataclass(frozen=True, slots=True)
class Invalid:
    """The answer does not fit: schema problems (``loc``/``msg``) and, when the channel
    decoded the answer from a form, the fields it could not read (field -> message)."""

    problems: list[dict[str, Any]] = field(default_factory=list)
    unreadable: Mapping[str, str] = field(default_factory=dict)


def sees(principal: Principal, task_id: str, owner_id: str, assignee: str | None) -> bool:
    """Operators see everything; agents their own tasks; reviewers what is assigned to them;
    a handoff session only its one task."""
    if principal.scope_task_id is not None and principal.scope_task_id != task_id:
        return False
    if principal.is_operator or owner_id == principal.owner_id:
        return True
    return principal.kind == "user" and assignee == principal.id


def can_see(principal: Principal, task: TaskRecord) -> bool:
    return sees(
        principal, task.id, task.owner_id, task.assigned_to_user_id
    ) or candidates.sees_as_candidate(principal, task)


async def load_task(ctx: ServerContext, task_id: str) -> TaskRecord | None:
    """The task, or None for an unknown id (or a string that is no task id at all)."""
    if not TASK_ID.match(task_id):
        return None
    async with ctx.reader.connect() as conn:
        found = (
            (await conn.execute(select(TaskRow).where(TaskRow.id == task_id)))
            .mappings()
            .one_or_none()
        )
    return TaskRecord.from_row(found) if found is not None else None


async def visible_task(ctx: ServerContext, task_id: str, who: Principal) -> TaskRecord | None:
    """The task if ``who`` may see it; someone else's task is as missing as an unknown one.

    Besides :func:`sees`, a task's listed approvers see it (they may answer it)."""
    found = await seen_task(ctx, task_id, who)
    return found[0] if found is not None else None


async def seen_task(
    ctx: ServerContext, task_id: str, who: Principal
) -> tuple[TaskRecord, Groups] | None:
    """:func:`visible_task`, with the roles and pools ``who`` was judged by."""
    task = await load_task(ctx, task_id)
    if task is None:
        return None
    groups = await groups_for(ctx.reader, who, task)
    if can_see(who, task) or sees_as_approver(who, task, groups):
        return task, groups
    return None


async def answer_refusal_of(
    ctx: ServerContext, who: Principal, task: TaskRecord, groups: Groups | None = None
) -> Refusal | None:
    """Why ``who`` may not answer ``task`` now (state, approvers, assignment, a vote
    already cast), as the answer itself would refuse it; None when they may."""
    if (refused := await _answer_gate(ctx, who, task, groups)) is not None:
        return refused
    if not policy_of(task).counts_votes:
        return None
    # The answer itself leaves this one to the vote's write (votes.CastVote), which reads
    # the votes anyway: asked ahead, as here, it is one read more.
    async with ctx.reader.connect() as conn:
        reason = await votes.vote_refusal(conn, ctx.sealer, who, task)
    if reason is None:
        return None
    return await _said(ctx, who, Refused(task.id, task.status, reason, task), "answer")


async def _answer_gate(
    ctx: ServerContext, who: Principal, task: TaskRecord, groups: Groups | None
) -> Refusal | None:
    """The checks every answer passes first, in this order, for :func:`answer` and
    :func:`answer_refusal_of` alike: ``who`` may answer at all (agent keys never do), the
    task still takes answers, and ``who`` may answer this one (approvers, assignment:
    :func:`approvers.answer_refusal`). ``groups``: ``who``'s roles and pools, read here
    when None (only for a task that takes answers)."""
    if not who.can_answer:
        return Refusal(
            403, ErrorCode.FORBIDDEN, "Agent keys may create and read tasks, not answer them."
        )
    if task.status not in ANSWERABLE:
        return _refused(Refused(task.id, task.status), "answer")
    if groups is None:
        groups = await groups_for(ctx.reader, who, task)
    if (reason := answer_refusal(who, task, groups)) is not None:
        return await _said(ctx, who, Refused(task.id, task.status, reason, task), "answer")
    return None


def not_found(task_id: str) -> Refusal:
    return Refusal(404, ErrorCode.TASK_NOT_FOUND, f"No task {task_id!r}.")


async def answer(
    ctx: ServerContext,
    task_id: str,
    who: Principal,
    channel: Channel,
    response: dict[str, Any] | None,
    *,
    text: str | None = None,
    unreadable: Mapping[str, str] | None = None,
) -> Done | Refusal | Invalid:
    """Record ``who``'s answer to a task, if everything allows it.

    A task without a verifier completes with the answer. A task with one moves to
    ``submitted``: the answer is stored and checked in the background
    (:mod:`services.verification`), and :class:`Done` carries the submitted task.

    Args:
        response: The structured answer; None when the person answered in ``text``.
        text: A free-text reply, for a task whose verifier parses natural language into
            the response schema (Slack thread replies, email replies, the dashboard's
            "in your own words").
        unreadable: Fields the channel could not decode from what the person typed (field
            name -> message); reported with the schema's problems, after the refusals.
    """
    seen = await seen_task(ctx, task_id, who)
    if seen is None:
        return not_found(task_id)
    task, groups = seen
    if (refused := await _answer_gate(ctx, who, task, groups)) is not None:
        return refused
    config = config_of(task.verifier_config) if task.verifier_config is not None else None
    if text is not None:
        if config is None or not config.parse_natural_language:
            return Refusal(
                422,
                ErrorCode.NATURAL_LANGUAGE_NOT_ACCEPTED,
                "This task takes a structured answer: it has no verifier that reads free text.",
                task.status,
            )
        if not text.strip():
            return Invalid([{"loc": ["text"], "msg": "The reply is empty.", "type": "empty"}])
    else:
        try:
            problems = await ctx.schemas.errors(
                task.response_schema, response or {}, which="response", stored=True
            )
        except ApiError as exc:
            return Refusal(exc.status_code, ErrorCode(exc.code), exc.message, task.status)
        if problems or unreadable:
            return Invalid(problems, dict(unreadable or {}))
    if config is None and policy_of(task).counts_votes:
        assert response is not None
        voted = await votes.cast(ctx, votes.CastVote(ctx, task_id, who, channel, response, groups))
        if isinstance(voted, Refused):
            return _refused(voted, "answer")
        ctx.metrics.task_answered(channel.value)
        return Done(voted.moved.task, response, voted.votes)
    if config is None:
        assert response is not None
        complete = Complete(ctx, task_id, who, channel, response)
        complete.groups = groups
        outcome = await _act(ctx, complete, "answer")
        if not isinstance(outcome, Done):
            return outcome
        ctx.metrics.task_answered(channel.value)
        return Done(outcome.task, response)
    # An answer that cannot be checked must not land: say what the server lacks, store nothing.
    blocked = refuse_submit(config)
    if blocked is not None:
        return Refusal(424, blocked.code, blocked.message, task.status)
    submission = Submission.of(who, channel, response if text is None else None, text)
    submit = Submit(ctx, task_id, who, channel, submission)
    submit.groups = groups
    submitted = await _act(ctx, submit, "answer")
    if isinstance(submitted, Done):
        ctx.metrics.task_answered(channel.value)
    return submitted


async def claim(
    ctx: ServerContext, task_id: str, who: Principal, channel: Channel, *, offered: bool = False
) -> Done | Refusal:
    """Take a task before answering it; the first claim wins.

    Args:
        offered: The task was offered to whoever takes it first where ``who`` saw it (a
            Slack channel's broadcast): then a reviewer may claim it while it has no
            assignee, though reviewers otherwise see only tasks assigned to them.
    """
    task = await load_task(ctx, task_id)
    if task is None:
        return not_found(task_id)
    groups = await groups_for(ctx.reader, who, task)
    # Whoever was offered the task may learn that someone else took it: the claim below is
    # then refused as already claimed (a lost race must not read as "no such task").
    seen = can_see(who, task) or sees_as_approver(who, task, groups)
    if not (seen or (offered and who.kind == "user")):
        return not_found(task_id)
    if not who.can_answer:
        return Refusal(
            403, ErrorCode.FORBIDDEN, "Agent keys may create and read tasks, not claim them."
        )
    if (
        policy_of(task).counts_votes
        and task.status is TaskStatus.IN_PROGRESS
        and answer_refusal(who, task, groups) is None
    ):
        # Several people vote on it: one taking it in hand does not shut the others out.
        return Done(task)
    claim = Claim(ctx, task_id, who, channel)
    claim.groups = groups
    return await _act(ctx, claim, "claim")


async def cancel(
    ctx: ServerContext, task_id: str, who: Principal, channel: Channel, reason: str | None = None
) -> Done | Refusal:
    """End a task without an answer (operators, and the agent that created it)."""
    if await visible_task(ctx, task_id, who) is None:
        return not_found(task_id)
    return await _act(ctx, Cancel(ctx, task_id, who, channel, reason), "cancel")


async def _act(ctx: ServerContext, action: TaskAction, verb: str) -> Done | Refusal:
    result = await ctx.writer.submit(action)
    if isinstance(result, Refused):
        return await _said(ctx, action.actor, result, verb)
    assert isinstance(result, Moved)
    return Done(result.task)


async def _said(ctx: ServerContext, who: Principal, result: Refused, verb: str) -> Refusal:
    """:func:`_refused`, except that a candidate who lost the task is told who took it."""
    refusal = _refused(result, verb)
    if refusal.code not in (ErrorCode.NOT_ASSIGNED_TO_YOU, ErrorCode.TASK_ALREADY_CLAIMED):
        return refusal
    if (name := await candidates.taker(ctx.reader, who, result.task)) is None:
        return refusal
    message = f"{name} took this task."
    return Refusal(403, ErrorCode.NOT_ASSIGNED_TO_YOU, message, refusal.current, taken_by=name)


def _refused(result: Refused, verb: str) -> Refusal:
    current = result.current
    if result.reason == votes.ALREADY_VOTED:
        return Refusal(
            409, ErrorCode.ALREADY_VOTED, "You have already voted on this task.", current
        )
    if current is None:
        return not_found(result.task_id)
    if result.reason == NOT_AN_APPROVER:
        return Refusal(
            403,
            ErrorCode.NOT_AN_APPROVER,
            f"Only this task's approvers may {verb} it, and you are not one of them.",
            current,
        )
    if result.reason == votes.REQUESTER_CANNOT_APPROVE:
        return Refusal(
            403,
            ErrorCode.REQUESTER_CANNOT_APPROVE,
            "You asked for this approval, so your vote cannot count towards it.",
            current,
        )
    if result.reason == NOT_ASSIGNED_TO_YOU:
        return Refusal(
            403, ErrorCode.NOT_ASSIGNED_TO_YOU, "This task isn't assigned to you.", current
        )
    if result.reason == "FORBIDDEN":
        return Refusal(403, ErrorCode.FORBIDDEN, f"You may not {verb} this task.", current)
    if current.is_terminal:
        return Refusal(
            409, ErrorCode.TASK_ALREADY_TERMINAL, f"The task is already {current.value}.", current
        )
    if verb == "claim":
        return Refusal(
            409, ErrorCode.TASK_ALREADY_CLAIMED, "Someone else claimed this task first.", current
        )
    return Refusal(
        409, ErrorCode.INVALID_TRANSITION, f"Cannot {verb} a task that is {current.value}.", current
    )
