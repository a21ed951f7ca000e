"""PostgreSQL, ``awaithumans serve`` replicas on it, and HAProxy in front: for bench/replicas.py.

The parts are the tests' own (``tests/support/postgres.py``, ``tests/support/haproxy.py``),
imported as bench/verifier.py and bench/slack.py import the tests' stand-ins: one way to
start them, checked by the test suite, rather than a copy that drifts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
from _common import cpu_seconds, log

from awaithumans.testing import ServerProcess
from tests.support.haproxy import HAProxy
from tests.support.postgres import PostgresServer

__all__ = [
    "GroupCpu",
    "HAProxy",
    "PostgresServer",
    "count_tasks",
    "postgres_pids",
    "replicas",
    "settled_count",
]


@contextlib.contextmanager
def replicas(
    pg: PostgresServer, database: str, count: int, env: dict[str, str] | None = None
) -> Iterator[list[ServerProcess]]:
    """``count`` servers on a fresh database ``database``, sharing one key and admin token.

    Started one after the other: the first runs the migrations (they are safe to race, but
    a benchmark has no reason to time that).
    """
    url = pg.create_database(database)
    servers: list[ServerProcess] = []
    try:
        for _ in range(count):
            first = servers[0] if servers else None
            server = ServerProcess(
                database_url=url,
                payload_key=first.payload_key if first else None,
                admin_token=first.admin_token if first else None,
                env=env,
            ).start()
            servers.append(server)
            assert server.proc is not None
            log(f"replica {len(servers)} of {count}: pid {server.proc.pid} at {server.url}")
        yield servers
    finally:
        for server in servers:
            server.close()
        pg.drop_database(database)


def count_tasks(pg: PostgresServer, database: str, key_prefix: str) -> int:
    """Rows in ``tasks`` whose idempotency key starts with ``key_prefix``."""

    async def count() -> int:
        conn = await asyncpg.connect(pg.dsn(database, driver=None))
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE idempotency_key LIKE $1", key_prefix + "%"
            )
        finally:
            await conn.close()
        return int(n)

    return asyncio.run(count())


def settled_count(
    pg: PostgresServer, database: str, key_prefix: str, at_least: int, timeout: float = 15.0
) -> int:
    """The row count once it reaches ``at_least`` and stops moving (creates in flight commit)."""
    deadline = time.monotonic() + timeout
    last = count_tasks(pg, database, key_prefix)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = count_tasks(pg, database, key_prefix)
        if now >= at_least and now == last:
            return now
        last = now
    return last


def postgres_pids(pg: PostgresServer) -> list[int]:
    """The postmaster and its children (backends, writer, WAL...): to read their CPU."""
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[1]) == postmaster:
            pids.append(int(stat.parent.name))
    return pids


class GroupCpu:
    """CPU seconds a changing group of processes used between ``start()`` and ``stop()``.

    ``pids()`` lists the group at both ends: a process that appeared in between (a pooled
    connection's new PostgreSQL backend) counts whole; one that came and went in between
    is missed (with pooled connections there are hardly any).
    """

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids
        self.used = 0.0

    @staticmethod
    def _read(pids: list[int]) -> dict[int, float]:
        out = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                out[pid] = cpu_seconds(pid)
        return out

    def start(self) -> GroupCpu:
        self._before = self._read(self.pids())
        return self

    def stop(self) -> GroupCpu:
        after = self._read(self.pids())
        self.used = sum(used - self._before.get(pid, 0.0) for pid, used in after.items())
        return self
