"""Slack: how soon the server's calls reach Slack after what caused them.

    .venv/bin/python bench/slack.py [--tasks 200] [--burst 200] [--json out.json]

Slack is the tests' stand-in (``tests/support/slack_standin.py``), run in this process on
127.0.0.1 and reached through the official ``slack-sdk`` (``AWAITHUMANS_SLACK_API_URL``);
it stamps each call on arrival, on the same monotonic clock as this script. One task at a
time, posted to ``slack:#approvals``:

- created -> ``chat.postMessage`` arrives (t0 just before ``POST /api/tasks``);
- a member's Claim click, signed as Slack signs it -> ``views.open`` arrives (t0 just before
  the interaction's POST; the ack's own time is reported too: Slack's limit is 3 s);
- the task's terminal state (an operator's ``POST .../complete``) -> ``chat.update`` rewrites
  the message.

Then ``--burst`` tasks created at once (16 clients): posts per second until Slack has them
all; and creation while Slack takes 1 s per call, which must not slow creating a task.
Targets: created -> posted p50 < 50 ms; click -> views.open p50 < 100 ms.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from _common import CpuWindow, Row, log, machine, make_parser, ms, percentile, quiet_check, report
from _refund import RefundDecision, RefundRequest, answer, payload

from awaithumans.core import Ask
from awaithumans.testing import ServerProcess
from tests.slack._helpers import action_payload, add_user, interact
from tests.support.slack_standin import Message, SlackStandIn

WARMUP_TASKS = 10
MEMBER = "U0ALICE01"  # Alice, in the stand-in's workspace and (added below) the directory


def body(key: str, i: int) -> dict[str, Any]:
    ask = Ask(
        task=f"Refund order ord_{i:06d}?",
        payload_schema=RefundRequest,
        payload=payload(i),
        response_schema=RefundDecision,
        timeout_seconds=3600,
        idempotency_key=key,
        notify=["slack:#approvals"],
    )
    return ask.request().model_dump(mode="json", exclude_none=True)


async def arrival(slack: SlackStandIn, method: str, count: int, timeout: float = 30) -> float:
    """When the ``count``-th call to ``method`` arrived (waits for it)."""
    if not await asyncio.to_thread(slack.wait_for_calls, method, count, timeout):
        raise TimeoutError(f"{method} call #{count} never came")
    return slack.calls_to(method)[count - 1].at


def message_of(slack: SlackStandIn, task_id: str) -> Message:
    for message in slack.posted():
        if task_id in str(message.blocks):
            return message
    raise LookupError(task_id)


async def one(
    http: httpx.AsyncClient, server: ServerProcess, slack: SlackStandIn, key: str, i: int
) -> tuple[float, float, float, float]:
    """One task's round: (created->posted, click->views.open, click ack, done->updated)."""
    posts = slack.count("chat.postMessage") + 1
    t0 = time.monotonic()
    made = await http.post("/api/tasks", json=body(key, i))
    made.raise_for_status()
    posted = await arrival(slack, "chat.postMessage", posts) - t0
    task_id = made.json()["id"]
    message = message_of(slack, task_id)

    views = slack.count("views.open") + 1
    updates = slack.count("chat.update") + 1
    t0 = time.monotonic()
    acked = await interact(server, action_payload(MEMBER, "awaithumans_claim", task_id, message))
    ack = time.monotonic() - t0
    assert acked.status_code == 200, acked.text
    opened = await arrival(slack, "views.open", views) - t0
    await arrival(slack, "chat.update", updates)  # "Claimed by @alice"

    t0 = time.monotonic()
    done = await http.post(f"/api/tasks/{task_id}/complete", json={"response": answer(i)})
    done.raise_for_status()
    updated = await arrival(slack, "chat.update", updates + 1) - t0
    return posted, opened, ack, updated


async def burst(http: httpx.AsyncClient, slack: SlackStandIn, run: str, n: int) -> float:
    """Create ``n`` tasks from 16 clients at once; Slack posts per second until all landed."""
    posts = slack.count("chat.postMessage") + n
    queue = list(range(n))

    async def worker() -> None:
        while queue:
            i = queue.pop()
            (
                await http.post("/api/tasks", json=body(f"bench-slack-{run}-b{i}", i))
            ).raise_for_status()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(16)))
    last = await arrival(slack, "chat.postMessage", posts, timeout=120)
    return n / (last - t0)


async def creates(http: httpx.AsyncClient, run: str, tag: str, n: int) -> list[float]:
    """``POST /api/tasks`` latencies, one at a time."""
    out = []
    for i in range(n):
        t0 = time.monotonic()
        (
            await http.post("/api/tasks", json=body(f"bench-slack-{run}-{tag}{i}", i))
        ).raise_for_status()
        out.append(time.monotonic() - t0)
    return sorted(out)


async def measure(
    server: ServerProcess, slack: SlackStandIn, tasks: int, n_burst: int
) -> dict[str, Any]:
    await add_user(server, "Alice Archer", slack_user_id=MEMBER)
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=30,
        limits=httpx.Limits(max_connections=20),
    ) as http:
        run = uuid.uuid4().hex[:8]
        for i in range(WARMUP_TASKS):
            await one(http, server, slack, f"bench-slack-{run}-w{i}", i)
        rounds = [await one(http, server, slack, f"bench-slack-{run}-{i}", i) for i in range(tasks)]
        log(f"sequential: {tasks} tasks posted, claimed and closed")
        assert server.proc is not None
        window = CpuWindow(server=server.proc.pid, loadgen=os.getpid()).start()
        rate = await burst(http, slack, run, n_burst)
        window.stop()
        log(f"burst: {n_burst} tasks posted")
        fast = await creates(http, run, "fast", 50)
        slack.latency = 1.0
        slow = await creates(http, run, "slow", 50)
        slack.latency = 0.0
        log("create latency with a slow Slack measured")
    column: Callable[[int], list[float]] = lambda k: sorted(r[k] for r in rounds)  # noqa: E731
    return {
        "posted": column(0), "opened": column(1), "ack": column(2), "updated": column(3),
        "rate": rate, "cpu": window, "fast": fast, "slow": slow,
    }  # fmt: skip


def main() -> None:
    parser = make_parser("Task -> Slack message, claim -> modal, terminal -> message update.")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args()
    log(f"machine: {machine()}")
    busy_before = quiet_check(args.wait_quiet)
    with SlackStandIn() as slack, ServerProcess(env=slack.env()) as server:
        assert server.proc is not None
        log(f"server pid {server.proc.pid} at {server.url}")
        window = CpuWindow(server=server.proc.pid, loadgen=os.getpid()).start()
        res = asyncio.run(measure(server, slack, args.tasks, args.burst))
        window.stop()
    p = percentile
    posted, opened, ack, updated = res["posted"], res["opened"], res["ack"], res["updated"]
    fast, slow, cpu = res["fast"], res["slow"], res["cpu"]
    n = len(posted)
    rows = [
        Row(f"task created → chat.postMessage at Slack, p50 (n={n})", "< 50 ms",
            ms(p(posted, 50)), "-", p(posted, 50) < 0.050),
        Row("task created → chat.postMessage at Slack, p99", "-", ms(p(posted, 99)), "-"),
        Row("Claim click → views.open at Slack, p50", "< 100 ms", ms(p(opened, 50)), "-",
            p(opened, 50) < 0.100),
        Row("Claim click → views.open at Slack, p99", "< 3 s (Slack's limit)",
            ms(p(opened, 99)), "-", p(opened, 99) < 3.0),
        Row("Claim click → ack, p50 / p99", "-", f"{ms(p(ack, 50))} / {ms(p(ack, 99))}", "-"),
        Row("terminal state → chat.update at Slack, p50 / p99", "report",
            f"{ms(p(updated, 50))} / {ms(p(updated, 99))}", "-"),
        Row(f"{args.burst} tasks created at once → all posted: posts/s", "report",
            f"{res['rate']:,.0f}/s", "-"),
        Row("  CPU meanwhile: server / clients and Slack stand-in", "-",
            f"{cpu.percent('server'):.0f}% / {cpu.percent('loadgen'):.0f}% of a core", "-"),
        Row("create p50, Slack answering at once / taking 1 s per call", "no slower",
            f"{ms(p(fast, 50))} / {ms(p(slow, 50))}", "-", p(slow, 50) < p(fast, 50) + 0.010),
        Row("other processes' CPU (noise)", "-",
            f"{window.others():.0f}% of a core (before start: {busy_before:.0f}%)", "-"),
    ]  # fmt: skip
    notes = [
        f"{WARMUP_TASKS} warm-up rounds excluded. Each round: create, claim (signed"
        " block_actions POST), operator completes; timestamps are the stand-in's arrival times.",
        "The stand-in, the server and this script share this machine's 2 cores; the server"
        " runs with its default settings (one process, SQLite).",
    ]
    report(rows, args.json, notes)


if __name__ == "__main__":
    main()
