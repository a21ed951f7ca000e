"""Submit-to-return latency: a human answers, how soon does the blocked ``await_human`` return?

    .venv/bin/python bench/submit_latency.py [--tasks 200] [--batch 20] [--json out.json]

For each task: start ``await_human(...)`` as an asyncio task, wait until the server holds its
long-poll (``GET /api/health`` reports it in ``waiting_polls``), then t0, POST ``/complete``
from a separate, already-connected httpx client, and t1 the moment ``await_human`` returns.
Latency = t1 - t0. Sequential (one task at a time), then a variant with ``--batch`` waiters
parked at once whose answers are all submitted at once. Targets (sequential): p50 < 10 ms,
p99 < 50 ms.
"""

from __future__ import annotations

import asyncio
import os

import httpx
from _common import (
    CpuWindow,
    Row,
    log,
    machine,
    make_parser,
    ms,
    percentile,
    quiet_check,
    report,
)
from _refund import one_batch

from awaithumans.testing import ServerProcess

WARMUP_TASKS = 10


async def measure(url: str, token: str, tasks: int, batch: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        run = os.urandom(4).hex()
        for i in range(WARMUP_TASKS):
            await one_batch(http, url, token, i, 1, f"{run}-warm")
        seq: list[tuple[float, float]] = []
        for i in range(tasks):
            seq += await one_batch(http, url, token, i, 1, f"{run}-seq")
        results["seq"] = sorted(x for x, _ in seq)
        results["seq_post"] = sorted(p for _, p in seq)
        log(f"sequential: {tasks} tasks done")
        if batch > 1:
            par: list[tuple[float, float]] = []
            for first in range(0, tasks, batch):
                par += await one_batch(
                    http, url, token, first, min(batch, tasks - first), f"{run}-par"
                )
            results["par"] = sorted(x for x, _ in par)
            log(f"batched: {tasks} tasks done, {batch} at a time")
    return results


def main() -> None:
    parser = make_parser("Submit -> await_human return latency.")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--batch", type=int, default=20, help="waiters per batch; 1 to skip")
    args = parser.parse_args()
    os.environ["AWAITHUMANS_QUIET"] = "1"
    log(f"machine: {machine()}")
    busy_before = quiet_check(args.wait_quiet)
    with ServerProcess() as server:
        assert server.proc is not None
        log(f"server pid {server.proc.pid} at {server.url}")
        window = CpuWindow(server=server.proc.pid, loadgen=os.getpid()).start()
        res = asyncio.run(measure(server.url, server.admin_token, args.tasks, args.batch))
        window.stop()

    seq, post = res["seq"], res["seq_post"]
    n = len(seq)
    rows = [
        Row(f"submit→return p50 (sequential, n={n})", "< 10 ms", ms(percentile(seq, 50)), "451 ms",
            percentile(seq, 50) < 0.010),
        Row("submit→return p90 (sequential)", "-", ms(percentile(seq, 90)), "-"),
        Row("submit→return p99 (sequential)", "< 50 ms", ms(percentile(seq, 99)), "-",
            percentile(seq, 99) < 0.050),
        Row("submit→return max (sequential)", "-", ms(seq[-1]), "-"),
        Row("POST /complete round trip p50 / p99", "-",
            f"{ms(percentile(post, 50))} / {ms(percentile(post, 99))}", "-"),
    ]  # fmt: skip
    if "par" in res:
        par = res["par"]
        rows.append(
            Row(
                f"submit→return p50 / p99 / max ({args.batch} parked, answered at once)",
                "-",
                f"{ms(percentile(par, 50))} / {ms(percentile(par, 99))} / {ms(par[-1])}",
                "-",
            )
        )
    rows.append(
        Row(
            "submit: other processes' CPU (noise)",
            "-",
            f"{window.others():.0f}% of a core (before start: {busy_before:.0f}%)",
            "-",
        )
    )
    notes = [
        f"{WARMUP_TASKS} warm-up tasks excluded; each await_human opens its own connection"
        " (as a fresh agent call does); the answering client keeps one connection.",
    ]
    report(rows, args.json, notes)


if __name__ == "__main__":
    main()
