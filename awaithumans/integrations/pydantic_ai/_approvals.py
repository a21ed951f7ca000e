"""Pydantic AI's approvals through ``await_human`` (the package's docstring says how to use it)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Unpack

from pydantic_ai import DeferredToolRequests, DeferredToolResults, ToolApproved, ToolDenied
from pydantic_ai.agent import AbstractAgent
from pydantic_ai.capabilities import HandleDeferredToolCalls
from pydantic_ai.messages import ModelMessage, ToolCallPart
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import RunContext

from awaithumans.integrations._tool_approval import (
    DENIED_MESSAGE,
    AskOptions,
    EditableToolDecision,
    OnTimeout,
    Title,
    ToolCall,
    arguments_of,
    ask_all,
)

#: The tasks' idempotency keys are ``f"{key_prefix}:{conversation_id}:{tool_call_id}"``.
KEY_PREFIX = "pydantic-ai"

#: Called with a run's messages and its pending requests each time the run stops for
#: approvals, before anyone is asked: save them to pick the run up after a restart.
OnPending = Callable[[list[ModelMessage], DeferredToolRequests], Awaitable[None] | None]


def to_result(decision: EditableToolDecision) -> ToolApproved | ToolDenied:
    """A person's decision as Pydantic AI's approval result."""
    if not decision.approved:
        return ToolDenied(decision.message or DENIED_MESSAGE)
    return ToolApproved(override_args=decision.arguments)


async def resolve_approvals(
    requests: DeferredToolRequests,
    *,
    agent_name: str | None = None,
    conversation_id: str | None = None,
    key_prefix: str = KEY_PREFIX,
    title: Title | None = None,
    on_timeout: OnTimeout = "deny",
    **options: Unpack[AskOptions],
) -> DeferredToolResults:
    """Ask a person about each call in ``requests.approvals``, all at once, and wait for all.

    Args:
        requests: The run's output when it stopped for approvals.
        agent_name: Shown with each call.
        conversation_id: The run's ``conversation_id``: part of each task's key, so call
            ids that repeat across conversations (some models number them; ``TestModel``
            fixes them) never share a task. It stays the same when a run is continued
            from its messages, so a re-run finds its tasks.
        key_prefix: The tasks' keys are ``f"{key_prefix}:{conversation_id}:{tool_call_id}"``
            (without a conversation id, ``f"{key_prefix}:{tool_call_id}"``).
        title: The task's question for a call (default: ``Allow tool(arg=value, ...)?``).
        on_timeout: ``"deny"``: a call nobody decided on in time is denied, with
            :data:`TIMEOUT_MESSAGE` for the model; ``"raise"``: ``TaskTimeoutError``.
        **options: ``await_human`` parameters for every task (``notify``, ``assign_to``,
            ``timeout_seconds`` (default one hour), ``approvers``, ``server_url``, ...).

    Returns:
        The results for the approvals (external calls in ``requests.calls`` are left to
        the caller), to pass as ``deferred_tool_results`` with the run's messages.

    Raises:
        The errors of ``await_human`` (a cancelled task, an unreachable server, ...); the
        other calls' waits are stopped, their tasks stay open for a re-run.
    """
    decisions = await ask_all(
        [
            (
                _call_of(part, requests, agent_name),
                _key(key_prefix, conversation_id, part.tool_call_id),
            )
            for part in requests.approvals
        ],
        response_schema=EditableToolDecision,
        title=title,
        on_timeout=on_timeout,
        options=options,
    )
    return requests.build_results(
        approvals={
            part.tool_call_id: to_result(decision)
            for part, decision in zip(requests.approvals, decisions, strict=True)
        }
    )


def approvals_capability(
    *,
    key_prefix: str = KEY_PREFIX,
    title: Title | None = None,
    on_timeout: OnTimeout = "deny",
    **options: Unpack[AskOptions],
) -> HandleDeferredToolCalls[Any]:
    """A capability that resolves approvals inside the run: ``Agent(..., capabilities=[...])``.

    The run waits for the people and goes on; it never ends on ``DeferredToolRequests``
    for an approval. A process that dies mid-wait loses the run's messages, so the model is
    asked again on a re-run (new call ids, new tasks); :func:`run_with_approvals` with
    ``on_pending`` is the form that picks up the same tasks.
    """

    async def handle(
        ctx: RunContext[Any], requests: DeferredToolRequests
    ) -> DeferredToolResults | None:
        if not requests.approvals:
            return None
        return await resolve_approvals(
            requests,
            agent_name=ctx.agent.name if ctx.agent is not None else None,
            conversation_id=ctx.conversation_id,
            key_prefix=key_prefix,
            title=title,
            on_timeout=on_timeout,
            **options,
        )

    return HandleDeferredToolCalls(handler=handle)


async def run_with_approvals(
    agent: AbstractAgent[Any, Any],
    user_prompt: str | None = None,
    *,
    message_history: Sequence[ModelMessage] | None = None,
    on_pending: OnPending | None = None,
    run_options: Mapping[str, Any] | None = None,
    key_prefix: str = KEY_PREFIX,
    title: Title | None = None,
    on_timeout: OnTimeout = "deny",
    **options: Unpack[AskOptions],
) -> AgentRunResult[Any]:
    """Run ``agent`` to its end, each approval it stops for decided by a person.

    Args:
        agent: The agent; ``DeferredToolRequests`` is added to its output types for the run.
        user_prompt: The prompt; None to continue ``message_history`` (a run saved by
            ``on_pending`` is picked up this way, and its pending calls find their tasks).
        message_history: Messages to continue from.
        on_pending: Called with the run's messages and requests each time it stops for
            approvals, before anyone is asked (sync or async).
        run_options: Further ``agent.run`` arguments (``deps``, ``model``, ``usage_limits``...).
        key_prefix, title, on_timeout, options: As for :func:`resolve_approvals`.

    Returns:
        The last run's result. Its output is the agent's, or ``DeferredToolRequests`` when
        the run also waits on external calls (``requests.calls``), which are the caller's.
    """
    extra = dict(run_options or {})
    output_type = _with_deferred(extra.pop("output_type", agent.output_type))
    result: AgentRunResult[Any] = await agent.run(
        user_prompt, message_history=message_history, output_type=output_type, **extra
    )
    while isinstance(result.output, DeferredToolRequests):
        requests = result.output
        if requests.calls or not requests.approvals:
            return result
        messages = result.all_messages()
        if on_pending is not None:
            saved = on_pending(messages, requests)
            if inspect.isawaitable(saved):
                await saved
        decisions = await resolve_approvals(
            requests,
            agent_name=agent.name,
            conversation_id=result.conversation_id,
            key_prefix=key_prefix,
            title=title,
            on_timeout=on_timeout,
            **options,
        )
        result = await agent.run(
            message_history=messages,
            deferred_tool_results=decisions,
            output_type=output_type,
            **extra,
        )
    return result


def _key(prefix: str, conversation_id: str | None, tool_call_id: str) -> str:
    return (
        f"{prefix}:{conversation_id}:{tool_call_id}"
        if conversation_id
        else f"{prefix}:{tool_call_id}"
    )


def _call_of(part: ToolCallPart, requests: DeferredToolRequests, agent: str | None) -> ToolCall:
    # The validated arguments are what the tool would receive (coerced, defaults filled):
    # the person approves those, not the model's raw text.
    validated = requests.validated_args.get(part.tool_call_id)
    arguments = validated if validated is not None else arguments_of(part.args)
    return ToolCall(
        tool=part.tool_name, arguments=arguments, call_id=part.tool_call_id, agent=agent
    )


def _with_deferred(spec: Any) -> Any:
    """The output types plus ``DeferredToolRequests``, so the run can stop for approvals."""
    if spec is DeferredToolRequests:
        return spec
    if isinstance(spec, list | tuple):
        return spec if DeferredToolRequests in spec else [*spec, DeferredToolRequests]
    return [spec, DeferredToolRequests]
