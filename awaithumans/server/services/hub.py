"""In-process wake-ups and a cache of task states for long-polls.

A long-poll registers interest in a task and sleeps on a future; the writer publishes each
committed change here, which updates the cached snapshot and resolves every future for that
task at once. No waiter ever re-reads the database on a timer, and an idle re-poll is
answered from memory.

The cache is authoritative only for changes this process made or heard about. With several
server processes on one PostgreSQL, the notifier (LISTEN/NOTIFY) feeds other processes'
changes in through :meth:`TaskHub.publish` as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from awaithumans.core._wire import TERMINAL_STATUSES, ApprovalView, TaskStatus


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a poll needs to answer and to authorise, without touching the database."""

    task_id: str
    version: int
    status: TaskStatus
    owner_id: str
    assigned_to_user_id: str | None
    response: dict[str, Any] | None
    completed_at: datetime | None
    timed_out_at: datetime | None
    verification_attempt: int
    #: The signed receipt of a completed task's answer (services/decision_receipts.py).
    receipt: dict[str, Any] | None = None
    #: For a task that needs several approvals: how many, and the votes (services/votes.py).
    approvals_required: int = 1
    approvals: tuple[ApprovalView, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class TaskHub:
    """Snapshots by task id (LRU-bounded) and the futures of the polls waiting on them."""

    def __init__(self, max_cached: int = 20_000) -> None:
        self._cache: OrderedDict[str, Snapshot] = OrderedDict()
        self._max = max_cached
        # Each waiting poll's future; its result is when the change that woke it was heard.
        self._waiters: dict[str, set[asyncio.Future[float]]] = {}
        self.closing = False
        # Bumped on every change to any task: the dashboard's queue waits on it. With
        # replicas (``shared_sequence``) it is the change's place in PostgreSQL's order
        # (services/replicas.py), so a page loaded from one replica and polling another
        # compares numbers from one count.
        self.sequence = 0
        self.shared_sequence = False
        self._any_change: asyncio.Event | None = None

    def get(self, task_id: str) -> Snapshot | None:
        snap = self._cache.get(task_id)
        if snap is not None:
            self._cache.move_to_end(task_id)
        return snap

    def changed(self) -> None:
        """Note that some task changed (created, moved): wakes ``wait_any``."""
        if self.shared_sequence:
            return  # the change's notice brings its place in the shared order (advance)
        self.sequence += 1
        self._wake_any()

    def advance(self, to: int) -> None:
        """Move the shared change sequence to ``to`` (a replica's change notice).

        Numbers are taken in order but their transactions may commit out of it: a notice
        whose number is not past the sequence still moves it, by one, so no page misses
        that change (every replica gets the same notices, so they all move alike).
        """
        self.sequence = to if to > self.sequence else self.sequence + 1
        self._wake_any()

    def _wake_any(self) -> None:
        if self._any_change is not None:
            self._any_change.set()
            self._any_change = None

    async def wait_any(self, since: int, timeout: float) -> int:
        """Return the change sequence once it passes ``since``, or after ``timeout``."""
        if self.sequence > since or self.closing:
            return self.sequence
        if self._any_change is None:
            self._any_change = asyncio.Event()
        event = self._any_change
        with contextlib.suppress(TimeoutError):
            # asyncio.timeout, not wait_for (services/scheduler.py says why).
            async with asyncio.timeout(timeout):
                await event.wait()
        return self.sequence

    def remember(self, snap: Snapshot) -> None:
        """Cache a snapshot read from the database unless a newer one is already known."""
        known = self._cache.get(snap.task_id)
        if known is None or known.version < snap.version:
            self._store(snap)

    def publish(self, snap: Snapshot) -> None:
        """Record a committed change and wake everything waiting on that task."""
        self.remember(snap)
        self.wake(snap.task_id)
        self.changed()

    def forget(self, task_id: str) -> None:
        """Drop a cached snapshot (another process changed the task; re-read on demand)."""
        self._cache.pop(task_id, None)
        self.wake(task_id)
        self.changed()

    def clear(self) -> None:
        """Forget every snapshot (the feed of other processes' changes was interrupted)."""
        self._cache.clear()
        for task_id in list(self._waiters):
            self.wake(task_id)

    def wake(self, task_id: str) -> None:
        waiters = self._waiters.pop(task_id, None)
        if not waiters:
            return
        # Called right after the commit (or the notice of another process's commit): the
        # start of the answer-to-return latency the waiting polls report.
        heard_at = time.monotonic()
        for fut in waiters:
            if not fut.done():
                fut.set_result(heard_at)

    async def wait(self, task_id: str, seen_version: int, timeout: float) -> float | None:
        """Return when the task moves past ``seen_version`` or after ``timeout`` seconds.

        Returns:
            When (``time.monotonic()``) the change that woke this wait was heard; None when
            nothing woke it (the timeout ran out, the server is closing, or the change was
            already known on entry).
        """
        known = self._cache.get(task_id)
        if self.closing or (known is not None and known.version > seen_version):
            return None
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(task_id, set())
        waiters.add(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None
        finally:
            waiters.discard(fut)
            if not waiters and self._waiters.get(task_id) is waiters:
                del self._waiters[task_id]

    def release_all(self) -> None:
        """Answer every waiting poll now and refuse new waits (shutdown).

        Clients re-poll and find the next process; without this a graceful shutdown would
        wait out every long-poll.
        """
        self.closing = True
        if self._any_change is not None:
            self._any_change.set()
        for task_id in list(self._waiters):
            self.wake(task_id)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def _store(self, snap: Snapshot) -> None:
        self._cache[snap.task_id] = snap
        self._cache.move_to_end(snap.task_id)
        while len(self._cache) > self._max:
            oldest, _ = self._cache.popitem(last=False)
            if oldest in self._waiters:
                # Never evict what someone is waiting on; put it back and stop trimming.
                self._cache[oldest] = _
                self._cache.move_to_end(oldest, last=False)
                break
