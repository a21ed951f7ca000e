"""What the agent-framework integrations share: one tool call put to a person, one decision back.

Pydantic AI's deferred tools and the OpenAI Agents SDK's ``needs_approval`` tools both stop
a run on a tool call the model made and wait for a yes or no. Each integration turns its
framework's call into a :class:`ToolCall` (what the person is shown, stored as the task's
payload) and gets a :class:`ToolDecision` back (the task's response), through
``await_human``: one task per tool call, keyed by the call's id so a re-run finds the same
task (and its answer, once given) instead of asking again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Literal, TypedDict, TypeVar

from pydantic import BaseModel, Field

from awaithumans.core import await_human
from awaithumans.core._ask import Assignee, RejectionPolicy, VerifierConfig

#: How long a person has to decide when the caller does not say (1 hour).
DEFAULT_TIMEOUT_SECONDS = 3600

#: What the model reads when a person denies a call without saying why.
DENIED_MESSAGE = "A person denied this tool call."

#: What the model is told when nobody decided in time and the call was denied for it.
TIMEOUT_MESSAGE = "Nobody approved this tool call in time, so it was not run."

#: ``on_timeout`` of the integrations: deny the call (fail closed, the default) or raise
#: ``TaskTimeoutError`` as ``await_human`` does.
OnTimeout = Literal["deny", "raise"]


class ToolCall(BaseModel):
    """A tool call the model made, as the person deciding on it sees it (the task's payload)."""

    tool: str = Field(description="The tool the agent wants to run")
    arguments: dict[str, Any] = Field(description="The arguments it would run with")
    call_id: str = Field(description="The model's id of this tool call")
    agent: str | None = Field(default=None, description="The agent that made the call")


class ToolDecision(BaseModel):
    """Run the call or not; a denial's message is what the model reads instead of a result.

    The boolean ``approved`` is what the server's approval policies count
    (``approvals_required``, ``rejection_policy``), as for any other task.
    """

    approved: bool = Field(description="Let the agent run this tool call?")
    message: str | None = Field(
        default=None, description="If denied: what the agent is told (why not, what to do instead)"
    )


class EditableToolDecision(ToolDecision):
    """A decision that may also change the arguments the approved call runs with.

    The edit replaces the arguments whole. The framework validates them as it would the
    model's: arguments that do not fit the tool reach the model as a validation error, and
    the tool does not run.
    """

    arguments: dict[str, Any] | None = Field(
        default=None,
        description="If approved: run with these arguments instead (the whole JSON object); "
        "leave empty to run the call as asked",
    )


class AskOptions(TypedDict, total=False):
    """The ``await_human`` parameters an integration passes on for every tool call's task.

    Each means what it means for :class:`awaithumans.core.Ask`; the task's question,
    payload, response schema and idempotency key are the integration's to set.
    """

    timeout_seconds: int
    notify: list[str] | None
    assign_to: Assignee | None
    verifier: VerifierConfig | dict[str, Any] | None
    redact_payload: bool
    task_metadata: dict[str, Any] | None
    callback_url: str | None
    approvers: list[str] | None
    operators_may_answer: bool
    approvals_required: int
    rejection_policy: RejectionPolicy
    reminders: list[timedelta] | None
    escalate_after: timedelta | None
    escalate_to: list[str] | None
    escalate_reassign: bool
    server_url: str | None
    api_key: str | None


#: The task's question for a call; the default is :func:`default_title`.
Title = Callable[[ToolCall], str]

D = TypeVar("D", bound=ToolDecision)


def default_title(call: ToolCall) -> str:
    """``Allow refund(order_id="ord_7", amount_usd=42)?``, cut to the server's 500 characters."""
    shown = ", ".join(f"{name}={json.dumps(value)}" for name, value in call.arguments.items())
    title = f"Allow {call.tool}({shown})?"
    return title if len(title) <= 500 else title[:498] + "…?"


def arguments_of(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """A call's arguments as a JSON object, whatever form the model sent them in.

    Text that is not a JSON object (a model's malformed call) is shown as it came, under
    ``"_raw"``, rather than hidden from the person deciding.
    """
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_raw": raw}


async def ask_about(
    call: ToolCall,
    *,
    key: str | None,
    response_schema: type[D],
    title: Title | None,
    on_timeout: OnTimeout,
    options: AskOptions,
) -> D:
    """Put ``call`` to a person (task keyed ``key``) and return their decision.

    Without a key (a call the framework gave no id), the SDK derives one from the question
    and the call, so the same call asked again still finds its task.

    With ``on_timeout="deny"`` an unanswered call is denied with :data:`TIMEOUT_MESSAGE`;
    the server records the task as timed out with that default applied.
    """
    denial = response_schema(approved=False, message=TIMEOUT_MESSAGE)
    merged: AskOptions = {"timeout_seconds": DEFAULT_TIMEOUT_SECONDS, **options}
    return await await_human(
        task=(title or default_title)(call),
        payload_schema=ToolCall,
        payload=call,
        response_schema=response_schema,
        idempotency_key=key,
        on_timeout=denial if on_timeout == "deny" else "raise",
        **merged,
    )


async def ask_all(
    calls: Sequence[tuple[ToolCall, str | None]],
    *,
    response_schema: type[D],
    title: Title | None,
    on_timeout: OnTimeout,
    options: AskOptions,
) -> list[D]:
    """:func:`ask_about` for each ``(call, key)`` at once; the decisions in the same order.

    If one wait fails, the others are stopped (their tasks stay open for a re-run) and the
    error is raised.
    """
    waits = [
        asyncio.ensure_future(
            ask_about(
                call,
                key=key,
                response_schema=response_schema,
                title=title,
                on_timeout=on_timeout,
                options=options,
            )
        )
        for call, key in calls
    ]
    try:
        return list(await asyncio.gather(*waits))
    except BaseException:
        for wait in waits:
            wait.cancel()
        raise
