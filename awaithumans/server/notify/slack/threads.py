"""Answers written as a reply in a task message's thread, read by the task's verifier.

A reply in the thread of a message the bot posted (found by its delivery receipt) is the
person's answer in their own words, when the task's verifier parses natural language: it
goes through the answer path as free text (``services.answers``), the bot reacts 👀 while
the verifier reads it, then says in the thread what it understood: recorded, or why not.
Without such a verifier the bot says how to answer instead. The bot's own messages, edits
and threads of other messages are ignored; the person must be allowed to answer, as in the
modal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.notify.slack.people import person
from awaithumans.server.notify.slack.workspace import (
    UNREACHABLE,
    NoWorkspace,
    Workspace,
    Workspaces,
)
from awaithumans.server.services import answers
from awaithumans.server.services.delivery import task_by_locator
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.replies import Later, takes_free_text, understood, verdict

log = logging.getLogger("awaithumans.server.slack")

Locate = Callable[[str, str], str]

HOW_TO_ANSWER = (
    "Replies here can't be read as answers to this task: use the message's *Approve in"
    " Slack* button (or *Claim*, then *Answer*), or the dashboard."
)


class ThreadReplies:
    def __init__(self, ctx: ServerContext, workspaces: Workspaces, locate: Locate) -> None:
        self._ctx = ctx
        self._workspaces = workspaces
        self._locate = locate

    async def handle(self, payload: dict[str, Any]) -> Later | None:
        """The work an Events API callback asks for (done after the ack), if any."""
        event = payload.get("event") or {}
        if payload.get("type") != "event_callback" or event.get("type") != "message":
            return None
        # Only people's new replies in a thread: not the bot's own messages, not edits.
        if event.get("subtype") or event.get("bot_id") or not event.get("thread_ts"):
            return None
        channel, parent = str(event.get("channel")), str(event["thread_ts"])
        if event.get("ts") == parent:
            return None
        task_id = await task_by_locator(self._ctx.engine, self._locate(channel, parent))
        if task_id is None:
            return None  # a thread of some other message
        try:
            workspace = await self._workspaces.for_team(payload.get("team_id"))
        except NoWorkspace:
            return None
        except SlackApiError as exc:
            log.warning("slack reply to %s unread: %s", task_id, exc.response.get("error"))
            return None
        except UNREACHABLE as exc:
            log.warning("slack reply to %s unread: Slack unreachable: %s", task_id, exc)
            return None

        async def later() -> None:
            await self._answer(workspace, event, task_id, channel, parent)

        return later

    async def _answer(
        self, workspace: Workspace, event: dict[str, Any], task_id: str, channel: str, parent: str
    ) -> None:
        member, text = str(event.get("user") or ""), str(event.get("text") or "")

        async def say(line: str) -> None:
            await workspace.client.chat_postMessage(channel=channel, thread_ts=parent, text=line)

        who = await person(self._ctx, workspace, member)
        if who is None:
            await say(f"<@{member}>, you're not in this awaithumans directory, so I can't take"
                      " your answer. Ask an operator to add you.")  # fmt: skip
            return
        task = await answers.load_task(self._ctx, task_id)
        if task is None:
            return
        if not takes_free_text(task):
            await say(HOW_TO_ANSWER)
            return
        outcome = await answers.answer(self._ctx, task_id, who, Channel.SLACK, None, text=text)
        if isinstance(outcome, answers.Refusal):
            await say(_refused(outcome))
            return
        if isinstance(outcome, answers.Invalid):
            await say("I couldn't read an answer in that. Please say what you decide.")
            return
        await workspace.client.reactions_add(channel=channel, timestamp=str(event["ts"]),
                                             name="eyes")  # fmt: skip
        ended = await verdict(self._ctx, outcome.task)
        await say(self._outcome(ended))

    def _outcome(self, task: TaskRecord) -> str:
        if task.status is TaskStatus.COMPLETED:
            items = "\n".join(f"• *{i.label}*: {i.value}" for i in understood(self._ctx, task))
            return f"✅ Recorded. I understood:\n{items}" if items else "✅ Recorded."
        if task.status is TaskStatus.REJECTED:
            return (
                f"❌ I couldn't take that as your answer: {task.verification_reason}"
                " Please reply again, saying it plainly."
            )
        if task.status is TaskStatus.VERIFICATION_EXHAUSTED:
            return f"⛔ That was the last attempt: {task.verification_reason} The task is closed."
        if task.status is TaskStatus.SUBMITTED:
            return (
                "⏳ Your reply is stored, and the verifier has not answered yet. This"
                " message will change when it does."
            )
        return f"The task is now {task.status.value.replace('_', ' ')}."


def _refused(refusal: answers.Refusal) -> str:
    if refusal.taken_by is not None:
        return f"{refusal.taken_by} took this task."
    if refusal.code in (ErrorCode.NOT_ASSIGNED_TO_YOU, ErrorCode.TASK_NOT_FOUND):
        return "This task isn't assigned to you. (On a channel's message, claim it first.)"
    return refusal.message
