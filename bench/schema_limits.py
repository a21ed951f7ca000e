"""Client schemas against the event loop: does a hostile or heavy check stall the server?

    .venv/bin/python bench/schema_limits.py [--rounds 20] [--json out.json]

One server on SQLite. A probe sends ``GET /api/health`` back to back on its own connection
the whole time and keeps every latency. Meanwhile, one phase at a time:

* **evil**: ``POST /api/tasks`` whose ``payload_schema`` has ``^(?:(a|aa)+\\1$|.*)$`` and a
  payload of 1,000 strings of 25-31 characters (on the backtracking engine this held every
  other request for 9.9 s). Now refused with 400 ``UNSUPPORTED_PATTERN``.
* **heavy**: a legal create checked in a worker process: 5,000 strings, each tried against
  999 linear patterns of an ``anyOf`` (about half a second of checking).
* **form**: ordinary creates (a pydantic schema with four patterns, checked inline).

Targets: every health answer < 50 ms; evil refused in < 100 ms (p50).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from _common import Row, log, make_parser, ms, percentile, quiet_check, report

from awaithumans.testing import ServerProcess

EVIL = r"^(?:(a|aa)+\1$|.*)$"
FORM = {
    "type": "object",
    "properties": {
        "zip_code": {"type": "string", "pattern": r"^\d{5}(-\d{4})?$"},
        "phone": {"type": "string", "pattern": r"^\+?[0-9 ()-]{7,20}$"},
        "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"},
        "sku": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
    },
    "required": ["zip_code", "phone", "email", "sku"],
}


def body(payload_schema: dict[str, Any], payload: Any) -> dict[str, Any]:
    return {
        "task": "Check this",
        "payload": payload,
        "payload_schema": payload_schema,
        "response_schema": FORM,
        "timeout_seconds": 600,
        "idempotency_key": f"bench-{uuid.uuid4().hex}",
    }


def listing(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"s": {"type": "array", "items": item}}}


def evil() -> dict[str, Any]:
    schema = listing({"type": "string", "pattern": EVIL})
    return body(schema, {"s": ["a" * (24 + i % 7) + "b" for i in range(1_000)]})


def heavy() -> dict[str, Any]:
    branches: list[dict[str, Any]] = [
        {"type": "string", "pattern": f"[a-z]{{3}}\\d{{2}}-{i}$"} for i in range(999)
    ]
    schema = listing({"anyOf": [*branches, {"type": "string"}]})
    return body(schema, {"s": [f"abcdefghijklmn{k:06d}" for k in range(5_000)]})


def form() -> dict[str, Any]:
    payload = {"zip_code": "94103", "phone": "+1 415 555 0100", "email": "a@b.io"}
    return body(FORM, {**payload, "sku": "ABC-1234"})


async def phase(
    api: httpx.AsyncClient, health: httpx.AsyncClient, make: Any, rounds: int, status: int
) -> tuple[list[float], list[float]]:
    """``rounds`` creates one after another while probing; (create s, health s) latencies."""
    probe: list[float] = []
    done = asyncio.Event()

    async def run_probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            (await health.get("/api/health")).raise_for_status()
            probe.append(time.perf_counter() - started)

    task = asyncio.create_task(run_probe())
    took = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            resp = await api.post("/api/tasks", json=make())
            took.append(time.perf_counter() - started)
            assert resp.status_code == status, resp.text[:300]
    finally:
        done.set()
        await task
    return took, probe


async def main() -> None:
    parser = make_parser(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    noise = quiet_check(args.wait_quiet)
    rows: list[Row] = []
    with ServerProcess() as server:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        async with (
            httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as api,
            httpx.AsyncClient(base_url=server.url, timeout=10) as health,
        ):
            await api.post("/api/tasks", json=form())  # starts a worker, warms the caches
            plan = [("evil", evil, args.rounds, 400), ("heavy", heavy, 3, 201)]
            plan.append(("form", form, args.rounds * 10, 201))
            for name, make, rounds, status in plan:
                log(f"{name}: {rounds} creates")
                took, probe = await phase(api, health, make, rounds, status)
                took.sort()
                probe.sort()
                target = {"evil": 0.1, "form": 0.05}.get(name)
                rows.append(
                    Row(
                        f"{name} create p50 / max",
                        f"p50 < {ms(target)}" if target else "",
                        f"{ms(percentile(took, 50))} / {ms(took[-1])}",
                        "9.9 s (evil)" if name == "evil" else "",
                        None if target is None else percentile(took, 50) < target,
                    )
                )
                rows.append(
                    Row(
                        f"health during {name}: n, p50, max",
                        "max < 50 ms",
                        f"{len(probe)}, {ms(percentile(probe, 50))}, {ms(probe[-1])}",
                        "",
                        probe[-1] < 0.05,
                    )
                )
    report(rows, args.json, [f"other processes used {noise:.0f}% of a core at the start"])


if __name__ == "__main__":
    asyncio.run(main())
