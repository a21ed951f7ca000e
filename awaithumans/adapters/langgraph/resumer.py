"""The resumer: the awaithumans server's signed webhooks in, ``Command(resume=...)`` out.

LangGraph never refuses a resume: for a finished thread it silently returns the old state,
and for an unknown thread it runs the graph from START. So before resuming, the resumer
looks for the pending interrupt that waits for exactly this task, and resumes that one by
its interrupt id; a late or duplicate event finds none and is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Interrupt, StateSnapshot

from awaithumans.adapters._events import webhook_data
from awaithumans.adapters.langgraph._shared import METADATA_KEY, interrupt_task_id
from awaithumans.core._errors import AwaitHumansError

if TYPE_CHECKING:
    # Imported for real inside resumer_app: standardwebhooks is needed only there.
    from awaithumans.adapters._webhook_app import ASGIApp

log = logging.getLogger("awaithumans.resumer.langgraph")

# The fields of the webhook's data the node needs; the resume value is checkpointed, so it
# stays small and free of personal data such as the answering human's email.
_RESUME_FIELDS = ("task_id", "status", "response", "verification_attempt")


class CompiledGraph(Protocol):
    """What the resumer needs of a compiled LangGraph graph (with a checkpointer)."""

    async def aget_state(
        self, config: RunnableConfig, *, subgraphs: bool = False
    ) -> StateSnapshot: ...

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None) -> Any: ...


class InterruptNotReadyError(AwaitHumansError):
    """The node that waits for the task has not reached its interrupt yet; retry later.

    Happens when the human answers before the graph has checkpointed the interrupt, or when
    the node failed before interrupting and has not been re-run yet.
    """

    default_code = "INTERRUPT_NOT_READY"

    def __init__(self, task_id: str, thread_id: str) -> None:
        super().__init__(
            f"Thread {thread_id!r} has not interrupted for task {task_id!r} yet.",
            hint="Deliver the event again later; the server's webhook retries do this.",
        )
        self.task_id = task_id
        self.thread_id = thread_id


class _ThreadLocks:
    """One lock per thread id, dropped when unused.

    Parallel branches of one thread end at the same time and their webhooks arrive
    together; LangGraph does not serialise writers of a thread, so the resumer must.
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


def _target(data: dict[str, Any]) -> tuple[str, str, str]:
    task_id = data.get("task_id")
    meta = data.get("task_metadata")
    where = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    thread_id = where.get("thread_id") if isinstance(where, dict) else None
    if not isinstance(task_id, str) or not isinstance(thread_id, str):
        raise ValueError("data.task_id and data.task_metadata.langgraph.thread_id required")
    assert isinstance(where, dict)
    ns = where.get("checkpoint_ns")
    return task_id, thread_id, ns if isinstance(ns, str) else ""


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


def _node_still_running(state: StateSnapshot, checkpoint_ns: str) -> bool:
    # The node's namespace is "name:task_id" (its first segment, inside subgraphs). A pending
    # task with that identity but no interrupt has not asked yet: the event came too early.
    # A pending task with other interrupts already consumed our answer and asked again.
    top = checkpoint_ns.split("|", 1)[0]
    return any(f"{t.name}:{t.id}" == top and not t.interrupts for t in state.tasks)


async def resume_from_event(
    graph: CompiledGraph, event_data: Any, config_base: RunnableConfig | None = None
) -> bool:
    """Resume the thread waiting for the task an awaithumans webhook reports on.

    Args:
        graph: The compiled graph, with the same checkpointer the node ran with.
        event_data: The webhook's ``data`` object (or the whole webhook body).
        config_base: Extra config for the resumed run (callbacks, other configurable
            keys); the thread id comes from the event's ``task_metadata.langgraph``.

    Returns:
        True if an interrupt was resumed, False if none waits for this task (the thread
        finished, moved on, or is unknown): a late or duplicate event.

    Raises:
        ValueError: The event lacks ``task_id`` or ``task_metadata.langgraph.thread_id``.
        InterruptNotReadyError: The waiting node has not interrupted yet; retry later.
        Exception: Whatever the resumed run raises, e.g. ``TaskCancelledError`` from the
            node; the interrupt then stays pending, as LangGraph leaves a failed task.
    """
    data = webhook_data(event_data)
    task_id, thread_id, checkpoint_ns = _target(data)
    config = _config(config_base, thread_id)
    async with _locks.hold(f"{id(graph)}:{thread_id}"):
        state = await graph.aget_state(config)
        waiting = _waiting_interrupt(state, task_id)
        if waiting is None:
            if _node_still_running(state, checkpoint_ns):
                raise InterruptNotReadyError(task_id, thread_id)
            log.info("no interrupt waits for task %s in thread %s", task_id, thread_id)
            return False
        value = {k: data.get(k) for k in _RESUME_FIELDS}
        # Keyed by interrupt id: with parallel branches or subgraphs several interrupts are
        # pending, and a bare resume value would go to all of them.
        await graph.ainvoke(Command(resume={waiting.id: value}), config)
        return True


def resumer_app(
    graph: CompiledGraph, webhook_secret: str, config_base: RunnableConfig | None = None
) -> ASGIApp:
    """Build an ASGI app that verifies awaithumans webhooks and resumes ``graph``.

    Responses tell the server's delivery queue what to do: 200 ``{"resumed": bool}`` done
    (also when the node raised the task's typed error, e.g. cancelled: that outcome is final,
    retrying changes nothing; ``error`` then holds its code), 401 bad signature, 400
    malformed, 503 the node has not interrupted yet (retry), 500 the resumed run failed
    otherwise (retry: the interrupt is still pending).

    Args:
        graph: The compiled graph, with a persistent checkpointer shared with the runners.
        webhook_secret: The ``whsec_...`` secret printed by ``awaithumans webhook-secret``.
        config_base: Extra config for every resumed run.

    Returns:
        An ASGI application; ``POST`` any path with a webhook, ``GET /healthz`` to probe.
    """
    from awaithumans.adapters._webhook_app import Reply, webhook_app

    async def on_event(data: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"resumed": await resume_from_event(graph, data, config_base)}
        except ValueError as exc:
            raise Reply(400, {"error": str(exc)}) from None
        except InterruptNotReadyError as exc:
            raise Reply(503, {"error": exc.message}) from None
        except AwaitHumansError as exc:
            return {"resumed": True, "error": exc.code}
        except Exception as exc:
            log.exception("resumed run failed for task %s", data.get("task_id"))
            raise Reply(500, {"error": f"resumed run failed: {type(exc).__name__}"}) from None

    return webhook_app(webhook_secret, on_event)
