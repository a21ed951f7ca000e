"""Running the SDK's coroutines from synchronous code, with or without a running loop.

The wait protocol is written once, as coroutines; every blocking ``await_human_sync`` is
made from its coroutine by :func:`blocking`, never written out by hand a second time.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
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


def run_blocking(
    coro: Coroutine[Any, Any, T], *, on_interrupt: Callable[[], None] | None = None
) -> T:
    """``asyncio.run`` when no loop runs in this thread, else :func:`run_in_thread`.

    ``on_interrupt`` runs when Ctrl-C stops the loop (it may exit the process instead).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            return asyncio.run(coro)
        except KeyboardInterrupt:
            if on_interrupt is not None:
                on_interrupt()
            raise
    return run_in_thread(coro)


def blocking(
    fn: Callable[P, Coroutine[Any, Any, T]],
    *,
    doc: str,
    on_interrupt: Callable[[], None] | None = None,
) -> Callable[P, T]:
    """The blocking twin of the coroutine function ``fn``: same parameters, same result.

    Type checkers see ``fn``'s exact signature (generic return type included); ``doc`` is
    the twin's docstring, and its name is ``fn``'s with ``_sync`` appended.
    """

    @functools.wraps(fn)
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_blocking(fn(*args, **kwargs), on_interrupt=on_interrupt)

    twin.__name__ = f"{fn.__name__}_sync"
    twin.__qualname__ = f"{fn.__qualname__}_sync"
    twin.__doc__ = doc
    return twin
