"""LangChain's Agent Inbox: an ``await_human`` whose interrupt that inbox can show and answer.

The Agent Inbox (and other LangGraph clients built on its schema) lists a thread's pending
interrupts when each is ``[{"action_request": {"action", "args"}, "config": {"allow_accept",
"allow_edit", "allow_respond", "allow_ignore"}, "description"}]`` and resumes the thread with
``[{"type": "accept" | "edit" | "response" | "ignore", "args": ...}]``. With
``agent_inbox=AgentInbox(...)``, the LangGraph adapter's ``await_human`` interrupts in that
shape (the awaithumans task rides along under its usual key, so the relay still finds it),
and takes either resume: the inbox's, or the awaithumans relay's after a person answered in
the dashboard, Slack or email. Both end as an :class:`InboxDecision`, and an answer given in
the inbox is recorded on the awaithumans task, so the audit trail holds every decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from awaithumans.adapters.langgraph._shared import INTERRUPT_KEY
from awaithumans.core._codes import ErrorCode
from awaithumans.core._errors import InvalidResumeError

InboxAction = Literal["accept", "edit", "response", "ignore"]
_ACTIONS = frozenset({"accept", "edit", "response", "ignore"})


class InboxDecision(BaseModel):
    """What the person did with the proposed action: the response schema for inbox asks.

    ``args`` holds the arguments to run with: the proposed ones for ``accept``, the
    person's for ``edit``; ``response`` is their words for ``response``.
    """

    type: InboxAction = Field(
        title="Decision", description="accept, edit the arguments, answer in words, or ignore"
    )
    args: dict[str, Any] | None = Field(
        default=None, title="Arguments", description="the arguments to run with (edit)"
    )
    response: str | None = Field(
        default=None, title="Response", description="your answer in words (response)"
    )


@dataclass(frozen=True, slots=True)
class AgentInbox:
    """How the interrupt shows in an Agent Inbox, and which answers it allows.

    Attributes:
        action: The action's name as the inbox shows it (e.g. ``"send_refund"``).
        args: The proposed arguments; the task's payload when None.
        description: Markdown above the action; the task and its review link when None.
    """

    action: str
    args: dict[str, Any] | None = None
    description: str | None = None
    allow_accept: bool = True
    allow_edit: bool = True
    allow_respond: bool = True
    allow_ignore: bool = True

    def allows(self, action: str) -> bool:
        return {
            "accept": self.allow_accept,
            "edit": self.allow_edit,
            "response": self.allow_respond,
            "ignore": self.allow_ignore,
        }.get(action, False)


def inbox_interrupt(
    inbox: AgentInbox, info: dict[str, Any], payload: dict[str, Any]
) -> list[dict[str, Any]]:
    """The interrupt value: one inbox request, carrying the awaithumans task's ``info``."""
    description = inbox.description
    if description is None:
        description = f"{info['task']}\n\nAlso answerable in awaithumans: {info['review_url']}"
    return [
        {
            "action_request": {
                "action": inbox.action,
                "args": inbox.args if inbox.args is not None else payload,
            },
            "config": {
                "allow_accept": inbox.allow_accept,
                "allow_edit": inbox.allow_edit,
                "allow_respond": inbox.allow_respond,
                "allow_ignore": inbox.allow_ignore,
            },
            "description": description,
            INTERRUPT_KEY: info,
        }
    ]


def inbox_response(value: Any) -> dict[str, Any] | None:
    """The inbox's answer in a resume value (a list of one, or the one), else None."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict) and value.get("type") in _ACTIONS and "status" not in value:
        return value
    return None


def decision_of(
    answer: dict[str, Any], inbox: AgentInbox, proposed: dict[str, Any], task_id: str
) -> dict[str, Any]:
    """The :class:`InboxDecision` (as JSON) an inbox answer stands for; ``proposed`` are the
    arguments the interrupt showed.

    Raises:
        InvalidResumeError: The answer is one the interrupt's config does not allow, or
            its arguments have the wrong shape.
    """
    action = str(answer["type"])
    if not inbox.allows(action):
        raise _refused(
            task_id, f"the Agent Inbox answered {action!r}, which this ask's config does not allow"
        )
    args = answer.get("args")
    if action == "accept":
        return _decision("accept", args=proposed)
    if action == "edit":
        edited = args.get("args") if isinstance(args, dict) else None
        if not isinstance(edited, dict):
            raise _refused(
                task_id, "an 'edit' answer carries {'action', 'args'} with the edited arguments"
            )
        return _decision("edit", args=edited)
    if action == "response":
        if not isinstance(args, str):
            raise _refused(task_id, "a 'response' answer carries the person's words as text")
        return _decision("response", response=args)
    return _decision("ignore")


def _decision(
    action: str, *, args: dict[str, Any] | None = None, response: str | None = None
) -> dict[str, Any]:
    # Every field, so what the task records is exactly what the node returns.
    return {"type": action, "args": args, "response": response}


def _refused(task_id: str, why: str) -> InvalidResumeError:
    return InvalidResumeError(
        f"Task {task_id}: {why}.", task_id=task_id, code=ErrorCode.RESUME_NOT_ALLOWED
    )
