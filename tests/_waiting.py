"""Waiting on a condition with a deadline, the one way tests wait (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def until(
    check: Callable[[], Awaitable[Any]],
    timeout: float = 30.0,
    why: Callable[[], str] | None = None,
    interval: float = 0.05,
) -> Any:
    """Await ``check()`` until it returns something truthy, and return that.

    Raises:
        TimeoutError: Not within ``timeout`` seconds; ``why()`` (logs, say) is appended.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{why()}" if why is not None else ""
            raise TimeoutError(f"condition not met within {timeout}s{detail}")
        await asyncio.sleep(interval)
