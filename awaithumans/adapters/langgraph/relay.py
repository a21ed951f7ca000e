"""The relay: the awaithumans server's signed webhooks in, ``Command(resume=...)`` out.

LangGraph never refuses a resume: for a finished thread it silently returns the old state,
and for an unknown thread it runs the graph from START. So before resuming, the relay looks
for the pending interrupt that waits for exactly this task, and resumes that one by its
interrupt id; a late or duplicate event finds none and is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Interrupt, StateSnapshot

from awaithumans.adapters._relay import ASGIApp, Resumed, ResumeResult, relay_asgi, webhook_data
from awaithumans.adapters.langgraph._shared import interrupt_task_id, resume_value
from awaithumans.core._codes import ErrorCode
from awaithumans.core._errors import AwaitHumansError, NotOurEventError, RetryLaterError
from awaithumans.core._runs import LangGraphThread, final_status

log = logging.getLogger("awaithumans.relay.langgraph")


class CompiledGraph(Protocol):
    """What the relay needs of a compiled LangGraph graph (with a checkpointer)."""

    async def aget_state(
        self, config: RunnableConfig, *, subgraphs: bool = False
    ) -> StateSnapshot: ...

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None) -> Any: ...


def interrupt_not_ready(task_id: str, thread_id: str) -> RetryLaterError:
    """The node that waits for the task has not reached its interrupt yet: retry later.

    Happens when the human answers before the graph has checkpointed the interrupt, or when
    the node failed before interrupting and has not been re-run yet.
    """
    return RetryLaterError(
        f"Thread {thread_id!r} has not interrupted for task {task_id!r} yet.",
        code=ErrorCode.INTERRUPT_NOT_READY,
        hint="Deliver the event again later; the server's webhook retries do this.",
    )


class _ThreadLocks:
    """One lock per thread id, dropped when unused.

    Parallel branches of one thread end at the same time and their webhooks arrive
    together; LangGraph does not serialise writers of a thread, so the relay must.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


_locks = _ThreadLocks()


def _config(config_base: RunnableConfig | None, thread_id: str) -> RunnableConfig:
    base: dict[str, Any] = dict(config_base or {})
    configurable = dict(base.get("configurable") or {})
    configurable["thread_id"] = thread_id
    # Resume from the thread's latest checkpoint, at the root graph.
    configurable.pop("checkpoint_id", None)
    configurable.pop("checkpoint_ns", None)
    base["configurable"] = configurable
    config: RunnableConfig = base  # type: ignore[assignment]
    return config


def _waiting_interrupt(state: StateSnapshot, task_id: str) -> Interrupt | None:
    for pending in state.interrupts:
        if interrupt_task_id(pending.value) == task_id:
            return pending
    # Interrupts of subgraphs hang off their parent's task; look there too.
    for pregel_task in state.tasks:
        for pending in pregel_task.interrupts:
            if interrupt_task_id(pending.value) == task_id:
                return pending
    return None


def node_still_running(tasks: list[tuple[str, str, bool]], checkpoint_ns: str) -> bool:
    """Whether the node execution ``checkpoint_ns`` is pending without having interrupted.

    ``tasks`` are the thread's pending tasks as (name, id, has interrupts). The node's
    namespace is "name:task_id" (its first segment, inside subgraphs). A pending task with
    that identity but no interrupt has not asked yet: the event came too early. One with
    other interrupts already consumed our answer and asked again.
    """
    top = checkpoint_ns.split("|", 1)[0]
    return any(f"{name}:{id_}" == top and not asked for name, id_, asked in tasks)


async def resume_from_event(
    graph: CompiledGraph, event: Any, config_base: RunnableConfig | None = None
) -> ResumeResult:
    """Resume the thread waiting for the task an awaithumans webhook reports on.

    Args:
        graph: The compiled graph, with the same checkpointer the node ran with.
        event: The webhook's ``data`` object (or the whole webhook body).
        config_base: Extra config for the resumed run (callbacks, other configurable
            keys); the thread id comes from the event's ``task_metadata.langgraph``.

    Returns:
        ``RESUMED`` once the resumed run has ended, ``NOT_WAITING`` if no interrupt waits
        for this task (the thread finished, moved on, or is unknown): a late or duplicate
        event.

    Raises:
        NotOurEventError: The event names no task or no thread, or is not a final outcome.
        RetryLaterError: The waiting node has not interrupted yet (``INTERRUPT_NOT_READY``).
        Exception: Whatever the resumed run raises, e.g. ``TaskCancelledError`` from the
            node; the interrupt then stays pending, as LangGraph leaves a failed task.
    """
    data = webhook_data(event)
    task_id, thread = LangGraphThread.from_event(data)
    final_status(data)
    config = _config(config_base, thread.thread_id)
    async with _locks.hold(f"{id(graph)}:{thread.thread_id}"):
        state = await graph.aget_state(config)
        waiting = _waiting_interrupt(state, task_id)
        if waiting is None:
            pending = [(t.name, t.id, bool(t.interrupts)) for t in state.tasks]
            if node_still_running(pending, thread.checkpoint_ns):
                raise interrupt_not_ready(task_id, thread.thread_id)
            log.info("no interrupt waits for task %s in thread %s", task_id, thread.thread_id)
            return ResumeResult(Resumed.NOT_WAITING, "no interrupt waits for this task")
        # Keyed by interrupt id: with parallel branches or subgraphs several interrupts are
        # pending, and a bare resume value would go to all of them.
        await graph.ainvoke(Command(resume={waiting.id: resume_value(data)}), config)
        return ResumeResult(Resumed.RESUMED)


def relay_app(
    graph: CompiledGraph, webhook_secret: str, config_base: RunnableConfig | None = None
) -> ASGIApp:
    """Build an ASGI app that verifies awaithumans webhooks and resumes ``graph``.

    It answers once the resumed run has ended, so a run that fails is delivered again: 200
    done (also when the node raised the task's typed error, e.g. cancelled: that outcome
    is final, retrying changes nothing; ``reason`` then names its code), 401 bad signature,
    400 not an event for a LangGraph thread, 503 the node has not interrupted yet, 500 the
    resumed run failed otherwise (the interrupt is still pending: retried).

    Args:
        graph: The compiled graph, with a persistent checkpointer shared with the runners.
        webhook_secret: The ``whsec_...`` secret printed by ``awaithumans webhook-secret``.
        config_base: Extra config for every resumed run.

    Returns:
        An ASGI application; ``POST`` any path with a webhook, ``GET /healthz`` to probe.
    """

    async def resume(data: dict[str, Any]) -> ResumeResult:
        try:
            return await resume_from_event(graph, data, config_base)
        except (NotOurEventError, RetryLaterError):
            raise
        except AwaitHumansError as exc:
            # The node got the outcome and raised its typed error: the run has it.
            return ResumeResult(Resumed.RESUMED, f"the resumed run raised {exc.code}")

    return relay_asgi(webhook_secret, resume)
