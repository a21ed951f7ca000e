"""Idle cost of many waiting agents: 2,000 parked ``await_human`` calls against one server.

    .venv/bin/python bench/idle_waiters.py [--waiters 2000] [--window 60] [--json out.json]

All waiters run in this one process (asyncio), each with its own connection, as 2,000 agent
calls would. Once the server holds every long-poll, the script measures for ``--window``
seconds the server's RSS (VmRSS) and CPU (utime+stime from /proc/PID/stat, % of one core),
and its own CPU for context. The SDK re-polls every 30 s, so a 60 s window includes two
rounds of re-polls. Then it answers every task and checks every call returns its answer.
Targets: server RSS < 300 MiB, server CPU while idle < 5% of a core.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
from _common import (
    CpuWindow,
    Row,
    log,
    machine,
    make_parser,
    open_fds,
    quiet_check,
    raise_fd_limit,
    report,
    rss_mib,
    threads,
)
from _refund import RefundDecision, RefundRequest, answer, payload, task_ids, wait_for_parked

from awaithumans import await_human
from awaithumans.testing import ServerProcess

LAUNCH_WAVE = 250
ANSWER_CONCURRENCY = 32
BASELINE_SECONDS = 10.0


async def wait_one(i: int, url: str, token: str) -> RefundDecision:
    return await await_human(
        task=f"Refund order ord_{i:06d}?",
        payload_schema=RefundRequest,
        payload=payload(i),
        response_schema=RefundDecision,
        timeout_seconds=3600,
        idempotency_key=f"bench-idle-{i}",
        server_url=url,
        api_key=token,
    )


async def measure(server_pid: int, url: str, token: str, n: int, window: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        limits=httpx.Limits(max_connections=ANSWER_CONCURRENCY),
    ) as http:
        out["rss_before"] = rss_mib(server_pid)
        base = CpuWindow(server=server_pid).start()
        await asyncio.sleep(BASELINE_SECONDS)
        out["server_cpu_empty"] = base.stop().percent("server")
        t_launch = time.monotonic()
        waits: dict[int, asyncio.Task[RefundDecision]] = {}
        for first in range(0, n, LAUNCH_WAVE):
            for i in range(first, min(n, first + LAUNCH_WAVE)):
                waits[i] = asyncio.create_task(wait_one(i, url, token))
            await wait_for_parked(http, len(waits), timeout=60, interval=0.05)
        out["launch_s"] = time.monotonic() - t_launch
        log(f"{n} waiters parked in {out['launch_s']:.1f} s; idling {window:.0f} s")

        await asyncio.sleep(2)  # let the launch's garbage and connection setup settle
        cpu = CpuWindow(server=server_pid, loadgen=os.getpid()).start()
        rss = [rss_mib(server_pid)]
        end = time.monotonic() + window
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(5.0, left))
            rss.append(rss_mib(server_pid))
        cpu.stop()
        out.update(
            server_cpu=cpu.percent("server"),
            loadgen_cpu=cpu.percent("loadgen"),
            others_cpu=cpu.others(),
            window_s=cpu.wall,
            rss_max=max(rss),
            rss_end=rss[-1],
            server_threads=threads(server_pid),
            server_fds=open_fds(server_pid),
        )
        failed = [i for i, w in waits.items() if w.done()]
        out["parked_after"] = n - len(failed)
        log(f"idle window done: server {out['server_cpu']:.1f}% of a core")

        t_answer = time.monotonic()
        ids = await task_ids(http, {f"bench-idle-{i}" for i in range(n)})
        gate = asyncio.Semaphore(ANSWER_CONCURRENCY)

        async def complete(i: int) -> None:
            async with gate:
                resp = await http.post(
                    f"/api/tasks/{ids[f'bench-idle-{i}']}/complete", json={"response": answer(i)}
                )
                resp.raise_for_status()

        await asyncio.gather(*(complete(i) for i in range(n)))
        done, pending = await asyncio.wait(waits.values(), timeout=60)
        out["answer_s"] = time.monotonic() - t_answer
        right = 0
        for i, w in waits.items():
            if w in done and w.exception() is None:
                expected = answer(i)
                got = w.result()
                right += got.approved is expected["approved"] and got.notes == expected["notes"]
        for w in pending:
            w.cancel()
        out["returned_ok"] = right
    return out


def main() -> None:
    parser = make_parser("Idle cost of many parked await_human calls.")
    parser.add_argument("--waiters", type=int, default=2000)
    parser.add_argument("--window", type=float, default=60.0, help="idle seconds measured")
    args = parser.parse_args()
    os.environ["AWAITHUMANS_QUIET"] = "1"
    n = args.waiters
    raise_fd_limit(2 * n + 1024)
    log(f"machine: {machine()}")
    busy_before = quiet_check(args.wait_quiet)
    with ServerProcess() as server:
        assert server.proc is not None
        log(f"server pid {server.proc.pid} at {server.url}")
        res = asyncio.run(measure(server.proc.pid, server.url, server.admin_token, n, args.window))

    rows = [
        Row(f"idle: server RSS with {n:,} waiters (max)", "< 300 MiB",
            f"{res['rss_max']:.0f} MiB (before: {res['rss_before']:.0f})", "-",
            res["rss_max"] < 300),
        Row(f"idle: server CPU with {n:,} waiters", "< 5% of a core",
            f"{res['server_cpu']:.1f}%", "23% (200 waiters)", res["server_cpu"] < 5),
        Row("idle: server CPU with no waiters (context)", "-",
            f"{res['server_cpu_empty']:.1f}%", "-"),
        Row("idle: load generator CPU (context)", "-", f"{res['loadgen_cpu']:.1f}%", "-"),
        Row("idle: other processes' CPU (noise)", "-",
            f"{res['others_cpu']:.0f}% of a core (before start: {busy_before:.0f}%)", "-"),
        Row("idle: all waiters answered and returned", f"{n:,}",
            f"{res['returned_ok']:,} (in {res['answer_s']:.1f} s)", "-",
            res["returned_ok"] == n and res["parked_after"] == n),
    ]  # fmt: skip
    notes = [
        f"{n:,} waiters parked in {res['launch_s']:.1f} s (waves of {LAUNCH_WAVE});"
        f" idle window {res['window_s']:.0f} s (SDK re-polls every 30 s);"
        f" server threads {res['server_threads']}, open fds {res['server_fds']:,}.",
    ]
    report(rows, args.json, notes)


if __name__ == "__main__":
    main()
