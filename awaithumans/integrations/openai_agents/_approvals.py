"""The OpenAI Agents SDK's approvals through ``await_human`` (the package's docstring says how)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Unpack

from agents import Agent, Runner, RunResult, RunState, ToolApprovalItem
from agents.items import TResponseInputItem
from agents.run_config import RunOptions

from awaithumans.integrations._tool_approval import (
    DENIED_MESSAGE,
    AskOptions,
    OnTimeout,
    Title,
    ToolCall,
    ToolDecision,
    arguments_of,
    ask_all,
)

#: The tasks' idempotency keys are ``f"{key_prefix}:{call_id}"``.
KEY_PREFIX = "openai-agents"

#: Called with the serialized ``RunState`` (``RunState.to_string()``) each time the run stops
#: for approvals, before anyone is asked (sync or async): keep it to resume after a restart.
OnState = Callable[[str], Awaitable[None] | None]


async def resolve_interruptions(
    state: RunState[Any, Any],
    *,
    key_prefix: str = KEY_PREFIX,
    title: Title | None = None,
    on_timeout: OnTimeout = "deny",
    **options: Unpack[AskOptions],
) -> list[tuple[ToolApprovalItem, ToolDecision]]:
    """Ask a person about each of ``state``'s interruptions, all at once, and apply the answers.

    An approved call is approved on ``state`` (it runs when the run goes on); a denied one is
    rejected with the person's message (or :data:`DENIED_MESSAGE`) for the model.

    Args:
        state: The interrupted run's state (``result.to_state()``, or one read back with
            ``RunState.from_string``).
        key_prefix: The tasks' keys are ``f"{key_prefix}:{call_id}"``; set one per
            conversation when the model's call ids may repeat across them.
        title: The task's question for a call (default: ``Allow tool(arg=value, ...)?``).
        on_timeout: ``"deny"``: a call nobody decided on in time is rejected, with
            :data:`~awaithumans.integrations.openai_agents.TIMEOUT_MESSAGE` for the model;
            ``"raise"``: ``TaskTimeoutError``.
        **options: ``await_human`` parameters for every task (``notify``, ``assign_to``,
            ``timeout_seconds`` (default one hour), ``approvers``, ``server_url``, ...).

    Returns:
        Each interruption with its decision; continue with ``Runner.run(agent, state)``.

    Raises:
        The errors of ``await_human`` (a cancelled task, an unreachable server, ...); the
        other calls' waits are stopped and ``state`` is left as it was, their tasks open.
    """
    items = state.get_interruptions()
    decisions = await ask_all(
        [
            (_call_of(item), f"{key_prefix}:{item.call_id}" if item.call_id else None)
            for item in items
        ],
        response_schema=ToolDecision,
        title=title,
        on_timeout=on_timeout,
        options=options,
    )
    for item, decision in zip(items, decisions, strict=True):
        if decision.approved:
            state.approve(item)
        else:
            state.reject(item, rejection_message=decision.message or DENIED_MESSAGE)
    return list(zip(items, decisions, strict=True))


async def run_with_approvals(
    agent: Agent[Any],
    input: str | list[TResponseInputItem] | RunState[Any, Any],
    *,
    on_state: OnState | None = None,
    run_options: RunOptions[Any] | None = None,
    key_prefix: str = KEY_PREFIX,
    title: Title | None = None,
    on_timeout: OnTimeout = "deny",
    **options: Unpack[AskOptions],
) -> RunResult:
    """Run ``agent`` to its end, each interruption decided by a person through awaithumans.

    Args:
        agent: The starting agent.
        input: The run's input, or a ``RunState`` to go on from (its pending interruptions
            are decided first).
        on_state: Gets the serialized ``RunState`` each time the run stops for approvals,
            before anyone is asked. Serializing needs a context the SDK can write (a
            mapping, or none); see ``RunState.to_json``.
        run_options: Further ``Runner.run`` arguments (``context``, ``run_config``,
            ``max_turns``, ``session``, ...), used for every leg of the run.
        key_prefix, title, on_timeout, options: As for :func:`resolve_interruptions`.

    Returns:
        The final ``RunResult`` (one with no interruptions left).
    """
    run_options = run_options or {}
    if isinstance(input, RunState) and input.get_interruptions():
        await resolve_interruptions(
            input, key_prefix=key_prefix, title=title, on_timeout=on_timeout, **options
        )
    result = await Runner.run(agent, input, **run_options)
    while result.interruptions:
        state = result.to_state()
        if on_state is not None:
            saved = on_state(state.to_string())
            if inspect.isawaitable(saved):
                await saved
        await resolve_interruptions(
            state, key_prefix=key_prefix, title=title, on_timeout=on_timeout, **options
        )
        result = await Runner.run(agent, state, **run_options)
    return result


async def resume_with_approvals(
    agent: Agent[Any],
    saved_state: str,
    *,
    on_state: OnState | None = None,
    run_options: RunOptions[Any] | None = None,
    key_prefix: str = KEY_PREFIX,
    title: Title | None = None,
    on_timeout: OnTimeout = "deny",
    **options: Unpack[AskOptions],
) -> RunResult:
    """:func:`run_with_approvals` from a state ``on_state`` saved (``RunState.from_string``).

    Only pass a state your own storage kept: the SDK does not authenticate it, and it holds
    the pending calls and any approvals already given. A context that is not a mapping
    needs ``RunState.from_string(..., context_deserializer=...)``; then call
    :func:`run_with_approvals` with the state it returns.
    """
    state = await RunState.from_string(agent, saved_state)
    return await run_with_approvals(
        agent,
        state,
        on_state=on_state,
        run_options=run_options,
        key_prefix=key_prefix,
        title=title,
        on_timeout=on_timeout,
        **options,
    )


def _call_of(item: ToolApprovalItem) -> ToolCall:
    return ToolCall(
        tool=item.qualified_name or item.name or "tool",
        arguments=arguments_of(item.arguments),
        call_id=item.call_id or "",
        agent=item.agent.name,
    )
