"""Verification overhead: a human answers a task with a verifier; how soon is it completed?

    .venv/bin/python bench/verifier.py [--tasks 200] [--concurrency 32] [--json out.json]

The model is the tests' provider stand-in (``tests/support/llm_standin.py``), answering at
once through the Anthropic Messages format, so what is measured is the server's own path:
store the answer as ``submitted``, hand the verification job to the outbox, build the
prompt, call the provider through the official ``anthropic`` SDK, validate the verdict and
complete the task. For each task an ``await_human`` waits (its long-poll parked on the
server), then t0, ``POST /complete``, and t1 the moment ``await_human`` returns the answer.
The stand-in's own time per call is reported and subtracted. Then ``--concurrency``
clients answer ``--tasks`` more tasks at once: verifications per second.
Target: submit -> completed p50 < 20 ms over the stand-in's own time.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx
from _common import CpuWindow, Row, log, machine, make_parser, ms, percentile, quiet_check, report
from _refund import RefundDecision, RefundRequest, answer, payload, task_ids, wait_for_parked

from awaithumans import await_human
from awaithumans.core import Ask
from awaithumans.testing import ServerProcess
from awaithumans.verifiers.claude import claude_verifier
from tests.support.llm_standin import ProviderStandIn, verdict

WARMUP_TASKS = 10
VERIFIER = claude_verifier(instructions="Approve if the notes explain the decision.")


def ask(i: int, key: str, url: str, token: str) -> Ask[RefundDecision]:
    return Ask(
        task=f"Refund order ord_{i:06d}?",
        payload_schema=RefundRequest,
        payload=payload(i),
        response_schema=RefundDecision,
        timeout_seconds=3600,
        idempotency_key=key,
        verifier=VERIFIER,
        server_url=url,
        api_key=token,
    )


async def one(http: httpx.AsyncClient, url: str, token: str, i: int, key: str) -> float:
    """Park an ``await_human`` on a verified task, answer it; seconds to the answer's return."""
    a = ask(i, key, url, token)
    waiting = asyncio.create_task(
        await_human(
            task=a.task,
            payload_schema=a.payload_schema,
            payload=a.payload,
            response_schema=a.response_schema,
            timeout_seconds=a.timeout_seconds,
            idempotency_key=key,
            verifier=VERIFIER,
            server_url=url,
            api_key=token,
        )
    )
    await wait_for_parked(http, 1, timeout=30)
    task_id = (await task_ids(http, {key}))[key]
    t0 = time.perf_counter()
    resp = await http.post(f"/api/tasks/{task_id}/complete", json={"response": answer(i)})
    resp.raise_for_status()
    assert resp.json()["status"] == "submitted"
    decision = await asyncio.wait_for(waiting, 30)
    t1 = time.perf_counter()
    assert decision.notes == answer(i)["notes"]
    return t1 - t0


async def throughput(http: httpx.AsyncClient, run: str, tasks: int, concurrency: int) -> float:
    """Create ``tasks`` verified tasks, answer them from ``concurrency`` clients; verdicts/s."""
    keys = [f"bench-verify-{run}-tp-{i}" for i in range(tasks)]
    for i, key in enumerate(keys):
        body = ask(i, key, "", "").request().model_dump(mode="json", exclude_none=True)
        (await http.post("/api/tasks", json=body)).raise_for_status()
    ids = await task_ids(http, set(keys))
    queue = list(enumerate(keys))

    async def worker() -> None:
        while queue:
            i, key = queue.pop()
            r = await http.post(f"/api/tasks/{ids[key]}/complete", json={"response": answer(i)})
            r.raise_for_status()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    pending = set(ids.values())
    while pending:
        for task_id in list(pending):
            poll = await http.get(f"/api/tasks/{task_id}/poll", params={"timeout": 5})
            if poll.json()["status"] == "completed":
                pending.discard(task_id)
    return tasks / (time.perf_counter() - t0)


async def measure(
    url: str, token: str, tasks: int, concurrency: int, server_pid: int
) -> dict[str, object]:
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30, limits=limits
    ) as http:
        run = os.urandom(4).hex()
        for i in range(WARMUP_TASKS):
            await one(http, url, token, i, f"bench-verify-{run}-warm-{i}")
        seq = sorted(
            [await one(http, url, token, i, f"bench-verify-{run}-{i}") for i in range(tasks)]
        )
        log(f"sequential: {tasks} tasks done")
        window = CpuWindow(server=server_pid, loadgen=os.getpid()).start()
        rate = await throughput(http, run, tasks, concurrency)
        window.stop()
        log(f"throughput: {tasks} tasks from {concurrency} clients")
    return {"seq": seq, "rate": rate, "cpu": window}


def main() -> None:
    parser = make_parser("Submit -> verified -> completed latency and throughput.")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    os.environ["AWAITHUMANS_QUIET"] = "1"
    log(f"machine: {machine()}")
    busy_before = quiet_check(args.wait_quiet)
    standin = ProviderStandIn(brain=lambda _call: verdict(True, "Fine.")).start()
    env = {**standin.env(), "AWAITHUMANS_VERIFIER_CONCURRENCY": str(args.concurrency)}
    try:
        with ServerProcess(env=env) as server:
            assert server.proc is not None
            log(f"server pid {server.proc.pid} at {server.url}")
            window = CpuWindow(server=server.proc.pid, loadgen=os.getpid()).start()
            res = asyncio.run(
                measure(
                    server.url, server.admin_token, args.tasks, args.concurrency, server.proc.pid
                )
            )
            window.stop()
    finally:
        standin.stop()
    seq = res["seq"]
    assert isinstance(seq, list)
    model = sorted(standin.service_seconds)
    p50, p99, model50 = percentile(seq, 50), percentile(seq, 99), percentile(model, 50)
    rate, cpu = res["rate"], res["cpu"]
    assert isinstance(rate, float)
    assert isinstance(cpu, CpuWindow)
    rows = [
        Row(f"submit→verified answer returned p50 (sequential, n={len(seq)})", "-", ms(p50), "-"),
        Row("submit→verified answer returned p99 (sequential)", "-", ms(p99), "-"),
        Row("stand-in model's own time per call p50", "-", ms(model50), "-"),
        Row("overhead over the model's time, p50", "< 20 ms", ms(p50 - model50), "-",
            p50 - model50 < 0.020),
        Row(f"verifications/s ({args.concurrency} clients answering at once)", "report",
            f"{rate:,.0f}/s", "-"),
        Row("  CPU meanwhile: server / clients and stand-in", "-",
            f"{cpu.percent('server'):.0f}% / {cpu.percent('loadgen'):.0f}% of a core", "-"),
        Row("other processes' CPU (noise)", "-",
            f"{window.others():.0f}% of a core (before start: {busy_before:.0f}%)", "-"),
    ]  # fmt: skip
    notes = [
        f"{WARMUP_TASKS} warm-up tasks excluded; the verifier is claude_verifier through the"
        " anthropic SDK against the local stand-in, which answers at once; verifier"
        f" concurrency {args.concurrency}.",
        "The stand-in, the server and the clients share this machine's 2 cores.",
    ]
    report(rows, args.json, notes)


if __name__ == "__main__":
    main()
