"""awaithumans for LangGraph: a node asks a human, the graph interrupts, a webhook resumes it.

Inside a node (graph compiled with a checkpointer, invoked with a ``thread_id``)::

    from awaithumans.adapters.langgraph import await_human

    decision = await await_human(task=..., ..., callback_url="https://me/awaithumans")

(``await_human_sync`` in ``def`` nodes.) Serve :func:`relay_app` at ``callback_url``; it
resumes the right thread and interrupt when the server reports the task's outcome.
Importing this package imports ``langgraph``; ``import awaithumans`` does not.
"""

from awaithumans.core._extras import require_extra

require_extra("awaithumans.adapters.langgraph", "langgraph", "langgraph")

from awaithumans.adapters._relay import Resumed, ResumeResult
from awaithumans.adapters.langgraph._node import (
    answer_from_resume,
    await_human,
    await_human_sync,
    node_idempotency_key,
)
from awaithumans.adapters.langgraph._shared import INTERRUPT_KEY
from awaithumans.adapters.langgraph.inbox import AgentInbox, InboxDecision
from awaithumans.adapters.langgraph.relay import relay_app, resume_from_event
from awaithumans.core._runs import LangGraphThread

__all__ = [
    "INTERRUPT_KEY",
    "AgentInbox",
    "InboxDecision",
    "LangGraphThread",
    "ResumeResult",
    "Resumed",
    "answer_from_resume",
    "await_human",
    "await_human_sync",
    "node_idempotency_key",
    "relay_app",
    "resume_from_event",
]
