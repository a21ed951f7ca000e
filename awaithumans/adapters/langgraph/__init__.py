"""LangGraph adapter: a node asks a human, the graph interrupts, a webhook resumes it.

Inside a node (graph compiled with a checkpointer, invoked with a ``thread_id``)::

    answer = await await_human_async(task=..., ..., callback_url="https://me/resume")

Serve :func:`resumer_app` at ``callback_url``; it resumes the right thread and interrupt
when the server reports the task's outcome. Importing this module imports ``langgraph``;
``import awaithumans`` does not.
"""

from awaithumans.adapters.langgraph._node import (
    answer_from_resume,
    await_human,
    await_human_async,
    node_idempotency_key,
)
from awaithumans.adapters.langgraph._shared import INTERRUPT_KEY, METADATA_KEY
from awaithumans.adapters.langgraph.resumer import (
    InterruptNotReadyError,
    resume_from_event,
    resumer_app,
)

__all__ = [
    "INTERRUPT_KEY",
    "METADATA_KEY",
    "InterruptNotReadyError",
    "answer_from_resume",
    "await_human",
    "await_human_async",
    "node_idempotency_key",
    "resume_from_event",
    "resumer_app",
]
