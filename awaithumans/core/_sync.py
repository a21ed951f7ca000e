"""Running the SDK's coroutines from synchronous code, with or without a running loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private loop in a helper thread and block until it ends.

    For sync code called while this thread's loop is busy running the caller (a notebook,
    an async framework calling sync code): that loop cannot run anything else meanwhile.
    """
    results: list[T] = []
    errors: list[BaseException] = []
    # The caller's context variables go along: frameworks keep their run context in them
    # (Prefect's flow run, LangGraph's config), and the coroutine needs to see it.
    context = contextvars.copy_context()

    def runner() -> None:
        try:
            results.append(context.run(asyncio.run, coro))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=runner, name="awaithumans-wait", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` when no loop runs in this thread, else :func:`run_in_thread`."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    return run_in_thread(coro)
