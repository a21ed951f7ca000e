"""Wake-ups across server processes that share one PostgreSQL (LISTEN/NOTIFY).

Every task transition sends ``NOTIFY awaithumans_tasks, '<id>:<version>:<n>'`` inside its
own transaction, so the message goes out exactly when the change commits. Each process
listens on a dedicated connection; a change made elsewhere drops that task from the local
poll cache and wakes its long-polls, which then re-read the row. SQLite has one process by
construction and needs none of this.

``n``, the next number of the ``awaithumans_changes`` sequence (migration 0011), is the
dashboard's change sequence on every replica: a page loaded from one replica and polling
another compares numbers from the same count, instead of two processes' private counters
(which would make every poll that changes replica look like a change, and re-fetch in a
loop). Every process, the writer's own included, learns each change from its notice, and
starts from the sequence's last value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.server.services.hub import TaskHub

log = logging.getLogger("awaithumans.server.replicas")

CHANNEL = "awaithumans_tasks"


async def announce(conn: AsyncConnection, task_id: str, version: int) -> None:
    """Queue the change notice on ``conn``'s transaction (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_notify(:channel, :message || nextval('awaithumans_changes')::text)"),
            {"channel": CHANNEL, "message": f"{task_id}:{version}:"},
        )


async def announce_many(conn: AsyncConnection, changes: list[tuple[str, int]]) -> None:
    """Queue one change notice per ``(task id, version)``, in one statement (PostgreSQL).

    One notice each, not one joined list: each change takes its own place in the shared
    sequence, and the notices' size stays far under PostgreSQL's 8,000-byte payload limit.
    """
    if conn.dialect.name != "postgresql" or not changes:
        return
    if len(changes) == 1:
        await announce(conn, *changes[0])
        return
    await conn.execute(
        text(
            "SELECT pg_notify(:channel, m || nextval('awaithumans_changes')::text)"
            " FROM unnest(CAST(:messages AS text[])) AS m"
        ),
        {"channel": CHANNEL, "messages": [f"{task_id}:{version}:" for task_id, version in changes]},
    )


def _asyncpg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


class ReplicaListener:
    """Keeps a LISTEN connection open (reconnecting as needed) and feeds the hub."""

    def __init__(self, database_url: str, hub: TaskHub) -> None:
        self._dsn = _asyncpg_dsn(database_url)
        self._hub = hub
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="awaithumans-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        ids, _, rest = payload.partition(":")
        version, _, number = rest.partition(":")
        try:
            seen = int(version)
            order = int(number) if number else 0
        except ValueError:
            return
        self._hub.advance(order)
        for task_id in ids.split(","):
            known = self._hub.get(task_id)
            if known is None or known.version < seen:
                self._hub.forget(task_id)
            elif seen == 0:
                self._hub.changed()

    async def _run(self) -> None:
        import asyncpg

        delay = 0.5
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn)
                await conn.add_listener(CHANNEL, self._on_notify)
                # Whatever changed while we were not listening is unknown: start afresh, at
                # a place in the shared order past every change committed so far (pages that
                # missed something re-fetch).
                self._hub.shared_sequence = True
                last = await conn.fetchval("SELECT last_value FROM awaithumans_changes")
                self._hub.advance(int(last))
                self._hub.clear()
                self.ready.set()
                delay = 0.5
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1fs", exc, delay)
            finally:
                self.ready.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
