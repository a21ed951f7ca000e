"""Email: how soon a task's mail reaches the SMTP server, and that a relay down costs nothing.

    .venv/bin/python bench/email_channel.py [--n 200] [--burst 200] [--compare 50] [--json out.json]

The SMTP server is the tests' sink (``tests/support/smtp_sink.py``): a real ``aiosmtpd``
server on 127.0.0.1, run in a thread of this process. The server is started with
``AWAITHUMANS_EMAIL_TRANSPORT=smtp`` pointed at it (no TLS, no AUTH) and every task is
created with ``notify=["email:someone@acme.test"]``, so the outbox mails it through
``aiosmtplib``, one connection per message. The sink stamps each message when its DATA
completes (``time.monotonic()``, the same clock as this script); the mail's
``X-Awaithumans-Task`` header says which task it is for.

- created -> mail accepted by the SMTP server, ``--n`` tasks one at a time (t0 just before
  ``POST /api/tasks``, which must answer 201); as reference, what the SMTP exchange alone
  takes (``aiosmtplib.send`` from this script to the same SMTP server);
- ``--burst`` tasks created at once (``--clients`` concurrent clients): mails per second
  until the SMTP server has them all, with the server's and this process's CPU meanwhile;
- ``POST /api/tasks`` latency with the SMTP server up, then with it down (nothing listens
  on the configured port): creating a task must not wait for the mail, which stays queued
  in the outbox; then the SMTP server comes back and the queued mails are delivered.

Target: created -> mailed p50 < 100 ms; create no slower with the SMTP server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from email.message import EmailMessage
from typing import Any

import aiosmtplib
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
from _refund import RefundDecision, RefundRequest, payload

from awaithumans.core import Ask
from awaithumans.testing import ServerProcess
from tests.support.smtp_sink import Received, SmtpSink

WARMUP_TASKS = 10
RECIPIENT = "someone@acme.test"
TASK_HEADER = "X-Awaithumans-Task"


def server_env(smtp_port: int) -> dict[str, str]:
    return {
        "AWAITHUMANS_EMAIL_TRANSPORT": "smtp",
        "AWAITHUMANS_SMTP_HOST": "127.0.0.1",
        "AWAITHUMANS_SMTP_PORT": str(smtp_port),
        "AWAITHUMANS_SMTP_START_TLS": "false",
        "AWAITHUMANS_EMAIL_FROM": "approvals@acme.test",
    }


def body(key: str, i: int) -> dict[str, Any]:
    ask = Ask(
        task=f"Refund order ord_{i:06d}?",
        payload_schema=RefundRequest,
        payload=payload(i),
        response_schema=RefundDecision,
        timeout_seconds=3600,
        idempotency_key=key,
        notify=[f"email:{RECIPIENT}"],
    )
    return ask.request().model_dump(mode="json", exclude_none=True)


async def create(http: httpx.AsyncClient, key: str, i: int) -> str:
    """``POST /api/tasks``; the new task's id (a new task: 201)."""
    made = await http.post("/api/tasks", json=body(key, i))
    assert made.status_code == 201, f"{made.status_code}: {made.text}"
    return str(made.json()["id"])


async def mailed(sink: SmtpSink, ids: set[str], timeout: float = 30) -> dict[str, Received]:
    """The mail of each task in ``ids`` (waits until the SMTP server has them all)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = list(sink.messages)
        found = {m.header(TASK_HEADER): m for m in seen}
        got = {task_id: found[task_id] for task_id in ids if task_id in found}
        if len(got) == len(ids):
            return got
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(ids) - len(got)} of {len(ids)} mails never came")
        # The sink's timeout is an AssertionError; the loop above says what is missing.
        with contextlib.suppress(AssertionError):
            await sink.wait_for_async(len(seen) + 1, left)


async def smtp_alone(sink: SmtpSink, n: int) -> list[float]:
    """One ``aiosmtplib.send`` from this script to the same SMTP server, as the server's
    transport sends (a connection per message, no TLS): seconds each (sorted), after
    ``WARMUP_TASKS`` sends not counted."""
    out = []
    for i in range(WARMUP_TASKS + n):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "bench@acme.test", RECIPIENT, f"{i}"
        message.set_content("The SMTP exchange alone.")
        t0 = time.monotonic()
        await aiosmtplib.send(
            message, hostname=sink.host, port=sink.port, start_tls=False, use_tls=False
        )
        out.append(time.monotonic() - t0)
    return sorted(out[WARMUP_TASKS:])


async def one(http: httpx.AsyncClient, sink: SmtpSink, key: str, i: int) -> float:
    """Create one task; seconds until the SMTP server accepted its mail."""
    t0 = time.monotonic()
    task_id = await create(http, key, i)
    mail = (await mailed(sink, {task_id}))[task_id]
    assert mail.rcpt_tos == [RECIPIENT], mail.rcpt_tos
    return mail.received_at - t0


async def burst(
    http: httpx.AsyncClient, sink: SmtpSink, run: str, n: int, clients: int
) -> dict[str, Any]:
    """Create ``n`` tasks from ``clients`` clients at once: mails per second until the SMTP
    server has them all, seconds until the last 201 and the last mail, and each task's
    created -> mailed (sorted)."""
    queue = list(range(n))
    started: dict[str, float] = {}

    async def worker() -> None:
        while queue:
            i = queue.pop()
            t0 = time.monotonic()
            started[await create(http, f"bench-email-{run}-b{i}", i)] = t0

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(clients)))
    created = time.monotonic() - t0
    mails = await mailed(sink, set(started), timeout=120)
    last = max(m.received_at for m in mails.values()) - t0
    each = sorted(mails[task_id].received_at - t for task_id, t in started.items())
    return {"rate": n / last, "created": created, "last": last, "each": each}


async def creates(
    http: httpx.AsyncClient, run: str, tag: str, n: int
) -> tuple[list[float], set[str]]:
    """``POST /api/tasks`` latencies, one at a time (sorted), and the tasks' ids."""
    out: list[float] = []
    ids: set[str] = set()
    for i in range(n):
        t0 = time.monotonic()
        ids.add(await create(http, f"bench-email-{run}-{tag}{i}", i))
        out.append(time.monotonic() - t0)
    return sorted(out), ids


async def measure(
    server: ServerProcess, sink: SmtpSink, n: int, n_burst: int, clients: int, compare: int
) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=30,
        limits=httpx.Limits(max_connections=clients + 4),
    ) as http:
        run = uuid.uuid4().hex[:8]
        alone = await smtp_alone(sink, 30)
        for i in range(WARMUP_TASKS):
            await one(http, sink, f"bench-email-{run}-w{i}", i)
        sequential = sorted([await one(http, sink, f"bench-email-{run}-{i}", i) for i in range(n)])
        log(f"sequential: {n} tasks created and mailed")

        assert server.proc is not None
        window = CpuWindow(server=server.proc.pid, loadgen=os.getpid()).start()
        in_burst = await burst(http, sink, run, n_burst, clients)
        window.stop()
        log(f"burst: {n_burst} tasks mailed")

        up, up_ids = await creates(http, run, "up", compare)
        await mailed(sink, up_ids)  # all out before the SMTP server goes down
        sink.stop()
        arrived = len(sink.messages)
        down, down_ids = await creates(http, run, "down", compare)
        log(f"create latency with the SMTP server up and down measured ({compare} each)")
        await asyncio.sleep(0.5)  # down a moment longer: the last deliveries meet it too
        assert len(sink.messages) == arrived, "a mail came while the SMTP server was down"
        sink.start()  # the same port again
        t_back = time.monotonic()
        queued = await mailed(sink, down_ids, timeout=90)
        drained = max(m.received_at for m in queued.values()) - t_back
        log(f"SMTP server back: the {compare} queued mails came {drained:.1f} s later")
    return {
        "sequential": sequential, "alone": alone, "burst": in_burst, "cpu": window,
        "up": up, "down": down, "drained": drained,
    }  # fmt: skip


def main() -> None:
    parser = make_parser(
        "Task -> mail at the SMTP server; a burst; create with the SMTP server down."
    )
    parser.add_argument("--n", type=int, default=200, help="tasks created one at a time")
    parser.add_argument("--burst", type=int, default=200, help="tasks created at once")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in the burst")
    parser.add_argument(
        "--compare", type=int, default=50, help="creates with the SMTP server up, and down"
    )
    args = parser.parse_args()
    log(f"machine: {machine()}")
    busy_before = quiet_check(args.wait_quiet)
    sink = SmtpSink().start()
    try:
        with ServerProcess(env=server_env(sink.port)) as server:
            assert server.proc is not None
            log(f"server pid {server.proc.pid} at {server.url}; SMTP server on port {sink.port}")
            window = CpuWindow(server=server.proc.pid, loadgen=os.getpid()).start()
            res = asyncio.run(measure(server, sink, args.n, args.burst, args.clients, args.compare))
            window.stop()
    finally:
        sink.stop()
    p = percentile
    seq, alone, up, down, cpu = (
        res["sequential"], res["alone"], res["up"], res["down"], res["cpu"]
    )  # fmt: skip
    b = res["burst"]
    n = len(seq)
    rows = [
        Row(f"task created → mail accepted by the SMTP server, p50 (n={n})", "< 100 ms",
            ms(p(seq, 50)), "-", p(seq, 50) < 0.100),
        Row("task created → mail accepted by the SMTP server, p99", "-", ms(p(seq, 99)), "-"),
        Row("  reference: the SMTP exchange alone (aiosmtplib.send from here), p50 / p99", "-",
            f"{ms(p(alone, 50))} / {ms(p(alone, 99))}", "-"),
        Row(f"{args.burst} tasks created at once ({args.clients} clients) → all mailed: mails/s",
            "report", f"{b['rate']:,.0f}/s (last 201 after {b['created']:.1f} s,"
            f" last mail after {b['last']:.1f} s)", "-"),
        Row("  CPU meanwhile: server / clients and SMTP server", "-",
            f"{cpu.percent('server'):.0f}% / {cpu.percent('loadgen'):.0f}% of a core", "-"),
        Row("  created → mailed within the burst, p50 / p99", "-",
            f"{ms(p(b['each'], 50))} / {ms(p(b['each'], 99))}", "-"),
        Row(f"create p50, SMTP up / SMTP down (n={len(up)} each)", "no slower",
            f"{ms(p(up, 50))} / {ms(p(down, 50))}", "-", p(down, 50) < p(up, 50) + 0.010),
        Row("create p99, SMTP up / SMTP down", "-", f"{ms(p(up, 99))} / {ms(p(down, 99))}", "-"),
        Row(f"SMTP server back → the {len(down)} mails queued meanwhile all delivered", "report",
            f"{res['drained']:.1f} s", "-"),
        Row("other processes' CPU (noise)", "-",
            f"{window.others():.0f}% of a core (before start: {busy_before:.0f}%)", "-"),
    ]  # fmt: skip
    notes = [
        f"{WARMUP_TASKS} warm-up tasks excluded. t0 is taken just before POST /api/tasks (201);"
        " t1 is the SMTP server's time of accepting the mail's DATA, matched to its task by the"
        " X-Awaithumans-Task header.",
        "SMTP down: nothing listens on the configured port (connection refused at once); the"
        " mails wait in the outbox and go out on a retry (backoff ~1-2 s, 2-4 s, ...), which the"
        " outbox notices on its safety-net scan (AWAITHUMANS_OUTBOX_POLL_SECONDS, 5 s).",
        "The SMTP server, the server and this script share this machine's cores; the server"
        " runs with its default settings (one process, SQLite).",
    ]
    report(rows, args.json, notes)


if __name__ == "__main__":
    main()
