"""What people do in Slack: claim a broadcast, open the modal, submit it.

One handler for both transports (HTTP request URLs and Socket Mode). It answers within
Slack's 3 seconds with what the ack must carry (a modal's field errors), and hands back the
slower work (opening the modal, rewriting the message, an ephemeral reply) to run right
after the ack. Every change goes through the answer path (``services.answers``) as the
directory user behind the Slack member, on the ``slack`` channel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.notify.slack.messages import (
    CLAIM,
    OPEN_MODAL,
    claimed_broadcast,
    details_blocks,
)
from awaithumans.server.notify.slack.modal import (
    answer_view,
    field_errors_for,
    submitted_values,
    unfit_reason,
)
from awaithumans.server.notify.slack.people import person
from awaithumans.server.notify.slack.workspace import (
    UNREACHABLE,
    NoWorkspace,
    Workspace,
    Workspaces,
)
from awaithumans.server.principals import Principal
from awaithumans.server.services import answers
from awaithumans.server.services.directory import active_user
from awaithumans.server.services.first_view import record_view
from awaithumans.server.services.form_input import decode_submission, field_errors, load_form
from awaithumans.server.services.lifecycle import ANSWERABLE, Channel
from awaithumans.server.services.replies import Later
from awaithumans.server.services.verification import Submission
from awaithumans.server.services.views import open_for
from awaithumans.server.services.votes import approvals_for

log = logging.getLogger("awaithumans.server.slack")

DashboardLink = Callable[[str, Any, str | None], str]

NOT_IN_DIRECTORY = (
    "You're not in this awaithumans directory, so you can't answer its tasks."
    " Ask an operator to add you (Users → Add user)."
)
NOT_YOURS = "This task isn't assigned to you."
# A task's policy refusing someone, in Slack's words (the API's are for programs).
POLICY_WORDS = {
    ErrorCode.NOT_AN_APPROVER: "Only this task's approvers can answer it; you're not one of them.",
    ErrorCode.ALREADY_VOTED: "You already voted on this task; it waits for the other approvers.",
    ErrorCode.REQUESTER_CANNOT_APPROVE: "You asked for this approval, so you can't vote on it.",
}


@dataclass(frozen=True, slots=True)
class Reply:
    """The ack's body (None: an empty 200), and the work to do right after it."""

    body: dict[str, Any] | None = None
    later: Later | None = None


class Interactions:
    def __init__(
        self, ctx: ServerContext, workspaces: Workspaces, dashboard_link: DashboardLink
    ) -> None:
        self._ctx = ctx
        self._workspaces = workspaces
        self._link = dashboard_link

    async def handle(self, payload: dict[str, Any]) -> Reply:
        team = (payload.get("team") or {}).get("id") or (payload.get("user") or {}).get("team_id")
        try:
            workspace = await self._workspaces.for_team(team)
            if payload.get("type") == "block_actions":
                return await self._action(workspace, payload)
            if payload.get("type") == "view_submission":
                return await self._submission(workspace, payload)
        except NoWorkspace:
            log.warning("interaction from a workspace that is not installed: %s", team)
        except SlackApiError as exc:
            log.warning("slack interaction: %s", exc.response.get("error"))
        except UNREACHABLE as exc:
            log.warning("slack interaction: Slack unreachable: %s: %s", type(exc).__name__, exc)
        return Reply()

    # -- buttons ---------------------------------------------------------------------------

    async def _action(self, workspace: Workspace, payload: dict[str, Any]) -> Reply:
        action = (payload.get("actions") or [{}])[0]
        action_id, task_id = action.get("action_id"), str(action.get("value") or "")
        if action_id not in (CLAIM, OPEN_MODAL):
            return Reply()  # a link button: Slack opens the link itself
        member = str(payload["user"]["id"])
        where = _where(payload)
        who = await person(self._ctx, workspace, member)
        if who is None:
            return Reply(later=self._ephemeral(workspace, where, member, NOT_IN_DIRECTORY))
        if action_id == CLAIM:
            return await self._claim(workspace, payload, who, task_id, where)
        task = await answers.visible_task(self._ctx, task_id, who)
        if task is None:
            return Reply(later=self._ephemeral(workspace, where, member, NOT_YOURS))
        refusal = await answers.answer_refusal_of(self._ctx, who, task)
        if refusal is not None:
            text = _cannot_answer(task, refusal)
            return Reply(later=self._ephemeral(workspace, where, member, text))
        return Reply(later=self._open(workspace, payload, who, task, where))

    async def _claim(
        self,
        workspace: Workspace,
        payload: dict[str, Any],
        who: Principal,
        task_id: str,
        where: tuple[str, str] | None,
    ) -> Reply:
        member = str(payload["user"]["id"])
        # The broadcast offered the task to whoever takes it first in that channel.
        outcome = await answers.claim(self._ctx, task_id, who, Channel.SLACK, offered=True)
        if isinstance(outcome, answers.Refusal):
            text = await self._claim_refused(outcome, task_id)
            return Reply(later=self._ephemeral(workspace, where, member, text))
        task = outcome.task

        async def after() -> None:
            # The modal first: Slack's trigger is good for 3 seconds after the click.
            await self._open(workspace, payload, who, task, where)()
            if where is not None:
                link = self._link(task.id, task.timeout_at, who.id)
                votes = await approvals_for(self._ctx, task) or ()
                text, blocks = claimed_broadcast(
                    task, self._payload(task), f"<@{member}>", link, approvals=votes
                )
                await workspace.client.chat_update(
                    channel=where[0], ts=where[1], text=text, blocks=blocks
                )

        return Reply(later=after)

    async def _claim_refused(self, refusal: answers.Refusal, task_id: str) -> str:
        if refusal.taken_by is not None:  # offered to several people, and another took it
            return f"{refusal.taken_by} took this task."
        if refusal.code is ErrorCode.TASK_ALREADY_CLAIMED or refusal.current in (
            TaskStatus.IN_PROGRESS,
            TaskStatus.ASSIGNED,
        ):
            task = await answers.load_task(self._ctx, task_id)
            holder = None
            if task is not None and task.assigned_to_user_id is not None:
                holder = await active_user(self._ctx.engine, task.assigned_to_user_id)
            if holder is not None:
                name = f"<@{holder.slack_user_id}>" if holder.slack_user_id else holder.display_name
                if task is not None and task.status is TaskStatus.ASSIGNED:
                    return f"This task is assigned to {name}."
                return f"Already claimed by {name}."
            return "Someone else claimed this task first."
        if refusal.current is not None and refusal.current.is_terminal:
            return f"This task is already {refusal.current.value.replace('_', ' ')}."
        if refusal.code is ErrorCode.NOT_ASSIGNED_TO_YOU:
            return NOT_YOURS
        return POLICY_WORDS.get(refusal.code, refusal.message)

    def _open(
        self,
        workspace: Workspace,
        payload: dict[str, Any],
        who: Principal,
        task: TaskRecord,
        where: tuple[str, str] | None,
    ) -> Later:
        """Open the task's modal for the person who clicked (or send them the dashboard)."""
        form = load_form(task.form_definition, task.response_schema)
        member = str(payload["user"]["id"])

        async def go() -> None:
            unfit = unfit_reason(form)
            if unfit is not None:
                link = self._link(task.id, task.timeout_at, who.id)
                text = f"This form needs the dashboard ({unfit}): <{link}|complete it there>."
                await self._ephemeral(workspace, where, member, text)()
                return
            last = Submission.opened(self._ctx.sealer, task)
            view = answer_view(
                task.id,
                task.task,
                form,
                details=details_blocks(task, self._payload(task)),
                initial=(last.response if last is not None else None) or task.initial_response,
            )
            await workspace.client.views_open(trigger_id=payload["trigger_id"], view=view)
            await record_view(self._ctx, task, who)

        return go

    # -- the modal -------------------------------------------------------------------------

    async def _submission(self, workspace: Workspace, payload: dict[str, Any]) -> Reply:
        view = payload.get("view") or {}
        try:
            task_id = str(json.loads(view.get("private_metadata") or "{}")["task_id"])
        except (ValueError, KeyError, TypeError):
            return Reply()
        task = await answers.load_task(self._ctx, task_id)
        if task is None:
            return Reply(_errors_first(None, "This task no longer exists."))
        form = load_form(task.form_definition, task.response_schema)
        first = form.fields[0].name if form.fields else None
        who = await person(self._ctx, workspace, str(payload["user"]["id"]))
        if who is None:
            return Reply(_errors_first(first, NOT_IN_DIRECTORY))
        state = (view.get("state") or {}).get("values") or {}
        response, unreadable = decode_submission(
            form, submitted_values(state), schema=task.response_schema
        )
        outcome = await answers.answer(
            self._ctx, task_id, who, Channel.SLACK, response, unreadable=unreadable
        )
        if isinstance(outcome, answers.Invalid):
            by_field, general = field_errors(form, outcome.problems)
            errors = field_errors_for(form, {**by_field, **outcome.unreadable}, general)
            return Reply({"response_action": "errors", "errors": errors})
        if isinstance(outcome, answers.Refusal):
            # The task exists (it was just read): "not found" means not theirs to see.
            mine = outcome.code not in (ErrorCode.NOT_ASSIGNED_TO_YOU, ErrorCode.TASK_NOT_FOUND)
            words = POLICY_WORDS.get(outcome.code, outcome.message)
            if outcome.taken_by is not None:
                words, mine = f"{outcome.taken_by} took this task.", True
            return Reply(_errors_first(first, words if mine else NOT_YOURS))
        checking = outcome.task.status is TaskStatus.SUBMITTED
        return Reply({"response_action": "update", "view": _thanks(checking)})

    # -- helpers ---------------------------------------------------------------------------

    def _payload(self, task: TaskRecord) -> dict[str, Any] | None:
        if task.redact_payload:
            return None
        return open_for(self._ctx.sealer, task.id, task.payload_enc)

    def _ephemeral(
        self, workspace: Workspace, where: tuple[str, str] | None, member: str, text: str
    ) -> Later:
        async def send() -> None:
            if where is None:
                return
            await workspace.client.chat_postEphemeral(channel=where[0], user=member, text=text)

        return send


def _where(payload: dict[str, Any]) -> tuple[str, str] | None:
    """(channel, message ts) of the message whose button was pressed."""
    container = payload.get("container") or {}
    channel = container.get("channel_id") or (payload.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (payload.get("message") or {}).get("ts")
    return (str(channel), str(ts)) if channel and ts else None


def _cannot_answer(task: TaskRecord, refusal: answers.Refusal) -> str:
    """Why the modal does not open, in Slack's words."""
    if task.status not in ANSWERABLE:
        return f"This task is {task.status.value.replace('_', ' ')}: it takes no answer now."
    return POLICY_WORDS.get(refusal.code, NOT_YOURS)


def _errors_first(first: str | None, text: str) -> dict[str, Any]:
    """A refusal shown in the modal: at its first field, or (no fields) as the modal."""
    if first is None:
        return {"response_action": "update", "view": _notice(f"⚠️ {text}")}
    return {"response_action": "errors", "errors": {f"f:{first}": text[:150]}}


def _thanks(checking: bool) -> dict[str, Any]:
    return _notice(
        "⏳ Thanks: your answer is being checked by the task's verifier. If it needs a"
        " change, the task's message and the dashboard will say why."
        if checking
        else "✅ Thanks: your answer is recorded."
    )


def _notice(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Your answer"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
