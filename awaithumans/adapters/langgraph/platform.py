"""Resume a graph deployed on LangGraph Platform (LangGraph Server) from an awaithumans event.

There the graph and its checkpointer live behind the server's HTTP API, so the resumer
cannot call ``graph.ainvoke``; it uses the official ``langgraph-sdk`` client instead::

    from langgraph_sdk import get_client

    client = get_client(url="https://my-deployment.example")
    await resume_on_platform(client, webhook["data"], assistant_id="refunds")

As with :func:`~awaithumans.adapters.langgraph.resume_from_event`, the thread's state is
read first and only the interrupt that waits for exactly this task is resumed, by its id,
so a late or duplicate event is a no-op instead of a run from START.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError
from langgraph_sdk.schema import Interrupt, Run, ThreadState

from awaithumans.adapters._relay import webhook_data
from awaithumans.adapters.langgraph._shared import interrupt_task_id, resume_value
from awaithumans.adapters.langgraph.relay import interrupt_not_ready, node_still_running
from awaithumans.core._runs import LangGraphThread, final_status


def _find(interrupts: Iterable[Interrupt] | None, task_id: str) -> Interrupt | None:
    for pending in interrupts or ():
        if interrupt_task_id(pending.get("value")) == task_id:
            return pending
    return None


def _waiting_interrupt(state: ThreadState, task_id: str) -> Interrupt | None:
    found = _find(state.get("interrupts"), task_id)
    if found is not None:
        return found
    # Interrupts of subgraphs hang off their parent's task.
    for pregel_task in state.get("tasks") or ():
        found = _find(pregel_task.get("interrupts"), task_id)
        if found is not None:
            return found
    return None


async def resume_on_platform(
    client: LangGraphClient,
    event_data: Any,
    *,
    assistant_id: str,
    run_kwargs: Mapping[str, Any] | None = None,
) -> Run | None:
    """Resume the Platform thread waiting for the task an awaithumans webhook reports on.

    Args:
        client: A ``langgraph_sdk`` async client (``get_client(url=...)``).
        event_data: The webhook's ``data`` object (or the whole webhook body).
        assistant_id: The assistant (or graph name) that runs the resumed thread.
        run_kwargs: Extra keyword arguments for ``client.runs.create`` (``metadata``,
            ``webhook``, ``multitask_strategy``...).

    Returns:
        The background run that resumes the thread, or None if no interrupt waits for this
        task (the thread finished, moved on, or is unknown): a late or duplicate event.

    Raises:
        NotOurEventError: The event names no task or no thread, or is not a final outcome.
        RetryLaterError: The waiting node has not interrupted yet (``INTERRUPT_NOT_READY``).
        langgraph_sdk.errors.APIError: The Platform refused a call or was unreachable.
    """
    data = webhook_data(event_data)
    task_id, thread = LangGraphThread.from_event(data)
    final_status(data)
    try:
        state = await client.threads.get_state(thread.thread_id)
    except NotFoundError:
        return None  # an unknown (or deleted) thread: nothing waits, do not start one
    waiting = _waiting_interrupt(state, task_id)
    if waiting is None:
        pending = [
            (str(t.get("name")), str(t.get("id")), bool(t.get("interrupts")))
            for t in state.get("tasks") or ()
        ]
        if node_still_running(pending, thread.checkpoint_ns):
            raise interrupt_not_ready(task_id, thread.thread_id)
        return None
    return await client.runs.create(
        thread.thread_id,
        assistant_id,
        command={"resume": {waiting["id"]: resume_value(data)}},
        **dict(run_kwargs or {}),
    )
