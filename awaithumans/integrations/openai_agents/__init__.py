"""awaithumans for the OpenAI Agents SDK: a person decides on the calls of ``needs_approval`` tools.

Give a tool ``needs_approval=True`` and run the agent through awaithumans::

    from awaithumans.integrations.openai_agents import run_with_approvals

    result = await run_with_approvals(agent, "Refund order 7", on_state=save, notify=["slack:#ops"])

Each interruption of the run becomes one task (payload: the tool's name and arguments;
answer: approve, or deny with a message the model reads instead of a result), decided on
the ``RunState`` with ``approve`` / ``reject``, and the run goes on until it ends. Before
anyone is asked, ``on_state`` gets the serialized ``RunState`` (``to_string()``): a process
that restarts passes it to :func:`resume_with_approvals`, and since each task is keyed by
the tool call's id, the same tasks (and their answers, once given) are found again.

Lower level: :func:`resolve_interruptions` asks about a ``RunState``'s interruptions and
applies the decisions to it; the caller runs ``Runner.run(agent, state)`` itself.
"""

from awaithumans.core._extras import require_extra
from awaithumans.integrations._tool_approval import (
    DENIED_MESSAGE,
    TIMEOUT_MESSAGE,
    AskOptions,
    ToolCall,
    ToolDecision,
    default_title,
)

require_extra("awaithumans.integrations.openai_agents", "agents", "openai-agents")

from awaithumans.integrations.openai_agents._approvals import (  # noqa: E402 (after the check)
    KEY_PREFIX,
    OnState,
    resolve_interruptions,
    resume_with_approvals,
    run_with_approvals,
)

__all__ = [
    "DENIED_MESSAGE",
    "KEY_PREFIX",
    "TIMEOUT_MESSAGE",
    "AskOptions",
    "OnState",
    "ToolCall",
    "ToolDecision",
    "default_title",
    "resolve_interruptions",
    "resume_with_approvals",
    "run_with_approvals",
]
