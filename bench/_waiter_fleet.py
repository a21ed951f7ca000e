"""Many waiting agents in one process: creates N refund tasks, then long-polls each one.

Started by ``bench/replicas.py`` as a separate process, so the server's CPU readings never
include the load generator's (and its own CPU can be read on its own)::

    AWAITHUMANS_TOKEN=... python bench/_waiter_fleet.py URL --count 10000 --tag run1

Each waiter holds its own keep-alive connection and sends what the SDK's ``wait_for_answer``
sends: ``GET /api/tasks/{id}/poll?timeout=30`` with the bearer token, again as soon as an
answer says the task is still open, until it is final (see ``_rawhttp`` for why not httpx).

It speaks JSON lines: on stdout ``{"event": "created", "ids": [...]}`` once every task
exists, then ``{"event": "parked"}`` once the server reports every long-poll parked; on
stdin it takes ``stats``, ``collect N SECONDS`` (report the waiters that returned, once N
have or after SECONDS) and ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from _common import log, raise_fd_limit
from _rawhttp import Connection, ConnectionClosed, Endpoint
from _refund import RefundDecision, RefundRequest, payload

from awaithumans.core._wire import MAX_POLL_SECONDS, TERMINAL_STATUSES

CREATE_CONCURRENCY = 16
PARK_WAVE = 500
TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)
PAYLOAD_SCHEMA = RefundRequest.model_json_schema()
RESPONSE_SCHEMA = RefundDecision.model_json_schema()


def emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


def create_body(i: int, tag: str) -> dict[str, Any]:
    return {
        "task": f"Refund order ord_{i:06d}?",
        "payload": payload(i).model_dump(),
        "payload_schema": PAYLOAD_SCHEMA,
        "response_schema": RESPONSE_SCHEMA,
        "timeout_seconds": 3600,
        "idempotency_key": f"bench-{tag}-{i}",
    }


@dataclass
class Fleet:
    endpoint: Endpoint
    poll_seconds: int
    polls: int = 0  # poll answers received (each re-poll counts)
    errors: int = 0  # non-200 answers
    reconnects: int = 0
    returned: dict[str, tuple[float, str, Any]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def create(self, count: int, tag: str) -> list[str]:
        ids: list[str] = [""] * count
        queue = iter(range(count))

        async def worker() -> None:
            conn = await Connection.open(self.endpoint)
            for i in queue:
                request = self.endpoint.request("POST", "/api/tasks", create_body(i, tag))
                status, body = await conn.request(request)
                if status not in (200, 201):
                    raise RuntimeError(f"create {i}: {status} {body[:300]!r}")
                ids[i] = json.loads(body)["id"]
                if conn.closed:
                    conn = await Connection.open(self.endpoint)
            conn.close()

        await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))
        return ids

    async def wait(self, task_id: str) -> None:
        """One waiting agent: long-poll until the task is final, as the SDK does."""
        request = self.endpoint.request(
            "GET", f"/api/tasks/{task_id}/poll?timeout={self.poll_seconds}"
        )
        conn: Connection | None = None
        while True:
            try:
                if conn is None or conn.closed:
                    conn = await Connection.open(self.endpoint)
                status, body = await conn.request(request)
            except (ConnectionClosed, OSError):
                self.reconnects += 1
                conn = None
                await asyncio.sleep(0.5)  # the SDK backs off too; a restart, not a race
                continue
            self.polls += 1
            if status != 200:
                self.errors += 1
                await asyncio.sleep(0.5)
                continue
            data = json.loads(body)
            if data["status"] in TERMINAL:
                self.returned[task_id] = (time.monotonic(), data["status"], data.get("response"))
                self.changed.set()
                conn.close()
                return

    async def waiting_polls(self, health: Connection) -> int:
        status, body = await health.request(self.endpoint.request("GET", "/api/health"))
        if status != 200:
            raise RuntimeError(f"/api/health: {status} {body[:300]!r}")
        return int(json.loads(body)["waiting_polls"])

    async def park(self, ids: list[str], timeout: float = 120.0) -> list[asyncio.Task[None]]:
        """Start a waiter per task, in waves; return once the server holds them all."""
        health = await Connection.open(self.endpoint)
        tasks: list[asyncio.Task[None]] = []
        deadline = time.monotonic() + timeout
        for first in range(0, len(ids), PARK_WAVE):
            tasks += [asyncio.create_task(self.wait(t)) for t in ids[first : first + PARK_WAVE]]
            while (held := await self.waiting_polls(health)) < len(tasks):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {held} of {len(tasks)} long-polls parked")
                await asyncio.sleep(0.05)
        health.close()
        return tasks

    async def collect(self, at_least: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while len(self.returned) < at_least and (left := deadline - time.monotonic()) > 0:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                break
        emit("collected", returns=self.returned)

    def stats(self) -> None:
        emit(
            "stats",
            polls=self.polls,
            errors=self.errors,
            reconnects=self.reconnects,
            returned=len(self.returned),
            at=time.monotonic(),
        )


async def run(args: argparse.Namespace) -> None:
    fleet = Fleet(Endpoint.of(args.url, os.environ["AWAITHUMANS_TOKEN"]), args.poll_seconds)
    t0 = time.monotonic()
    ids = await fleet.create(args.count, args.tag)
    emit("created", ids=ids, seconds=time.monotonic() - t0)
    t0 = time.monotonic()
    tasks = await fleet.park(ids)
    emit("parked", seconds=time.monotonic() - t0)
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            break
        if line[0] == "stats":
            fleet.stats()
        elif line[0] == "collect":
            await fleet.collect(int(line[1]), float(line[2]))
        else:
            log(f"fleet: unknown command {line!r}")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Hold many long-polls (bench/replicas.py).")
    parser.add_argument("url")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--tag", required=True, help="idempotency keys are bench-TAG-i")
    parser.add_argument("--poll-seconds", type=int, default=MAX_POLL_SECONDS)
    args = parser.parse_args()
    raise_fd_limit(args.count + 1024)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
