"""Group commit: one writer task turns many concurrent writes into few transactions.

A transaction costs far more than the statements in it (SQLite's commit, SQLAlchemy's
connection checkout, aiosqlite's thread hop). Requests hand their write to the writer and
await the result; the writer takes everything queued, runs it in one transaction and
commits once. Under load a batch holds dozens of writes; when idle a write commits at once,
so latency does not suffer for throughput.

A write is a :class:`Write`: an ``apply(conn)`` coroutine and, once committed, ``after()``
for in-memory side effects (waking polls, kicking the outbox). Writes of one kind that
benefit from running as one bulk statement (task creation) implement ``apply_many``.
If a batch fails, each write in it is retried alone so one bad write cannot sink the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("awaithumans.server.writer")

T = TypeVar("T")

MAX_BATCH = 256


class RetryAlone(Exception):
    """Raised by a bulk ``apply_many`` whose batch cannot land as a whole (a row it read was
    changed by another process meanwhile): the writer rolls the batch back and applies each
    of its writes alone, which can decide again on what is there now."""


class Write(Generic[T]):
    """One unit of work for the writer."""

    #: Writes sharing a non-None group are applied together through ``apply_many``.
    group: ClassVar[str | None] = None

    async def apply(self, conn: AsyncConnection) -> T:
        raise NotImplementedError

    @classmethod
    async def apply_many(cls, conn: AsyncConnection, writes: Sequence[Write[Any]]) -> list[Any]:
        return [await w.apply(conn) for w in writes]

    def after(self, result: T) -> None:
        """Runs after the commit succeeded; must not raise or block."""


class _Item:
    __slots__ = ("future", "write")

    def __init__(self, write: Write[Any], future: asyncio.Future[Any]) -> None:
        self.write = write
        self.future = future


class Writer:
    """Owns every write transaction of this process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.writes = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="awaithumans-writer")

    async def stop(self) -> None:
        if self._task is None:
            return
        # Let queued writes finish: a client that got no answer may still retry, but one
        # that was told "created" must find its task.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 15)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, write: Write[T]) -> T:
        if self._task is None or self._task.done():
            raise RuntimeError("the writer is not running")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(write, fut))
        return await fut

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception as exc:
                if isinstance(exc, RetryAlone):
                    log.info("writer batch rolled back (%s); applying its writes alone", exc)
                else:
                    log.exception("writer batch failed; retrying its writes one by one")
                for item in batch:
                    if not item.future.done():
                        await self._commit_alone(item)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Item]) -> None:
        results: list[tuple[_Item, Any]] = []
        async with self._engine.connect() as conn:
            async with conn.begin():
                grouped: dict[str, list[_Item]] = {}
                for item in batch:
                    if item.write.group is not None:
                        grouped.setdefault(item.write.group, []).append(item)
                # Bulk groups first: a later write in the batch may refer to what they create.
                for items in grouped.values():
                    kind = type(items[0].write)
                    outs = await kind.apply_many(conn, [i.write for i in items])
                    results.extend(zip(items, outs, strict=True))
                for item in batch:
                    if item.write.group is None:
                        results.append((item, await item.write.apply(conn)))
            # Committed. Settle before the connection goes back to the pool (a reset round
            # trip): on PostgreSQL this process hears its own change notices, and one heard
            # before the hub has the new state makes every woken poll re-read its task.
            self.batches += 1
            self.writes += len(batch)
            self._settle(results)

    async def _commit_alone(self, item: _Item) -> None:
        try:
            async with self._engine.begin() as conn:
                write = item.write
                if write.group is not None:
                    (result,) = await type(write).apply_many(conn, [write])
                else:
                    result = await write.apply(conn)
        except Exception as exc:
            if not item.future.done():
                item.future.set_exception(exc)
            return
        self._settle([(item, result)])

    @staticmethod
    def _settle(results: list[tuple[_Item, Any]]) -> None:
        for item, result in results:
            try:
                item.write.after(result)
            except Exception:
                log.exception("post-commit hook failed")
            if not item.future.done():
                item.future.set_result(result)
