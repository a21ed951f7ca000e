"""awaithumans for Pydantic AI: a person approves, denies or edits the tool calls that need it.

Mark a tool ``requires_approval=True`` and run the agent through awaithumans::

    from awaithumans.integrations.pydantic_ai import run_with_approvals

    result = await run_with_approvals(agent, "Refund order 7", notify=["slack:#approvals"])

Each call to such a tool becomes one task (payload: the tool's name and arguments; answer:
approve, deny with a message for the model, or approve with edited arguments). Approved,
the tool runs (with the edited arguments when there are any); denied, the model reads the
message instead of a result. The task's key is the tool call's id, so a run picked up again
from its saved messages (``message_history``) finds the same tasks and their answers.

Lower level: :func:`resolve_approvals` turns a run's ``DeferredToolRequests`` into the
``DeferredToolResults`` to continue it with, and :func:`approvals_capability` resolves them
inside one run (Pydantic AI's ``HandleDeferredToolCalls``).
"""

from awaithumans.core._extras import require_extra
from awaithumans.integrations._tool_approval import (
    DENIED_MESSAGE,
    TIMEOUT_MESSAGE,
    AskOptions,
    EditableToolDecision,
    ToolCall,
    default_title,
)

require_extra("awaithumans.integrations.pydantic_ai", "pydantic_ai", "pydantic-ai")

from awaithumans.integrations.pydantic_ai._approvals import (  # noqa: E402 (after the check)
    KEY_PREFIX,
    OnPending,
    approvals_capability,
    resolve_approvals,
    run_with_approvals,
    to_result,
)

__all__ = [
    "DENIED_MESSAGE",
    "KEY_PREFIX",
    "TIMEOUT_MESSAGE",
    "AskOptions",
    "EditableToolDecision",
    "OnPending",
    "ToolCall",
    "approvals_capability",
    "default_title",
    "resolve_approvals",
    "run_with_approvals",
    "to_result",
]
