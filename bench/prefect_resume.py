"""Answer-to-running latency for the Prefect adapter.

    .venv/bin/python bench/prefect_resume.py [--runs 40] [--suspend-runs 8] [--json out.json]

A real Prefect server (``prefect server start``, SQLite) and one ``awaithumans serve``
(SQLite), each in a subprocess.

Paused runs: a flow in this process calls ``await_human`` (poll_interval 1 s, the
adapter's default) and is paused; after a random delay in [0, 1 s) (a human does not
answer in step with Prefect's polling) the bench POSTs ``/complete`` at t0; t1 is when the
flow's code runs again after the call. Target: p50 <= 700 ms. Reference: the same flow
with a bare ``pause_flow_run``, resumed through Prefect's API at t0 (Prefect alone, which
notices the resume at its next poll).

Suspended runs: a served deployment (``flow.serve``) runs a flow that suspends; the answer
goes to ``awaithumans relay prefect`` as a signed webhook; Prefect reschedules the run, the
runner (polling every 1 s) starts a new process, and the re-run flow finds the answered
task. t1 is when that process has the answer in hand (wall clock across processes).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from _common import REPO, Row, log, machine, make_parser, ms, percentile, quiet_check, report

from awaithumans.testing import PrefectServer, ServerProcess, free_port, stop_process

WARMUP_RUNS = 3
POLL_INTERVAL = 1.0
DEPLOYMENT = "suspended-refund/bench"


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


async def measure_paused(server: ServerProcess, runs: int, *, bare: bool) -> list[float]:
    from _prefect_flows import RUN_IDS, bare_pause, paused_refund
    from prefect.client.orchestration import get_client

    out: list[float] = []
    base = 100_000 if bare else 0
    async with (
        get_client() as prefect,
        httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
        ) as http,
    ):
        for n in range(WARMUP_RUNS + runs):
            i = base + n
            flow = bare_pause if bare else paused_refund
            running = asyncio.create_task(flow(i, POLL_INTERVAL))

            async def is_paused(i: int = i) -> bool:
                run_id = RUN_IDS.get(i)
                if run_id is None:
                    return False
                run = await prefect.read_flow_run(run_id)
                return run.state is not None and run.state.is_paused()

            await until(is_paused)
            task_id = None
            if not bare:
                items = (await http.get("/api/tasks", params={"limit": 5})).json()["items"]
                (task_id,) = [t["id"] for t in items if t["task"] == f"Refund order ord_{i:06d}?"]
            await asyncio.sleep(random.uniform(0, POLL_INTERVAL))
            t0 = time.perf_counter()
            if bare:
                # Refused only in the instant between the Paused state and the saved
                # input schema; try again then.
                while (
                    await prefect.resume_flow_run(RUN_IDS[i], run_input={"approved": True})
                ).status.value != "ACCEPT":
                    await asyncio.sleep(0.01)
            else:
                resp = await http.post(
                    f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}}
                )
                resp.raise_for_status()
            t1 = await asyncio.wait_for(running, 60)
            if n >= WARMUP_RUNS:
                out.append(t1 - t0)
    return sorted(out)


def start(cmd: list[str], env: dict[str, str], logfile: Path) -> subprocess.Popen[bytes]:
    with logfile.open("wb") as f:
        return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)


async def measure_suspended(
    server: ServerProcess, prefect_server: PrefectServer, runs: int, tmp: Path
) -> list[float]:
    from prefect.deployments import run_deployment

    from awaithumans.server.security import KeyRing
    from awaithumans.server.settings import Settings
    from awaithumans.server.webhook_secret import webhook_secret

    key = server.payload_key
    secret = webhook_secret(Settings(payload_key=key), KeyRing.from_text(key))
    env = {
        **os.environ,
        "AWAITHUMANS_WEBHOOK_SECRET": secret,
        "AWAITHUMANS_URL": server.url,
        "AWAITHUMANS_API_KEY": server.admin_token,
        "AWAITHUMANS_QUIET": "1",
    }
    port = free_port()
    relay = start(
        [sys.executable, "-m", "awaithumans._cli_entry", "relay", "prefect", "--port", str(port)],
        env,
        tmp / "relay.log",
    )
    serve_code = (
        "import sys; sys.path.insert(0, 'bench');"
        "from _prefect_flows import suspended_refund; suspended_refund.serve(name='bench')"
    )
    served = start([sys.executable, "-c", serve_code], env, tmp / "serve.log")
    out: list[float] = []
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
        ) as http:

            async def deployment_ready() -> bool:
                url = f"{prefect_server.api_url}/deployments/name/{DEPLOYMENT}"
                return (await http.get(url)).status_code == 200

            await until(deployment_ready)
            for n in range(runs + 1):
                i = 200_000 + n
                result = tmp / f"{i}.txt"
                run = await run_deployment(
                    DEPLOYMENT,
                    parameters={
                        "i": i,
                        "callback_url": f"http://127.0.0.1:{port}/hook",
                        "out": str(result),
                    },
                    timeout=0,
                )

                async def suspended(run_id: Any = run.id) -> bool:
                    from prefect.client.orchestration import get_client

                    async with get_client() as prefect:
                        state = (await prefect.read_flow_run(run_id)).state
                    return state is not None and state.name == "Suspended"

                await until(suspended, timeout=120)
                items = (await http.get("/api/tasks", params={"limit": 5})).json()["items"]
                (task_id,) = [t["id"] for t in items if t["task"] == f"Refund order ord_{i:06d}?"]
                t0 = time.time()
                resp = await http.post(
                    f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}}
                )
                resp.raise_for_status()

                async def answered(result: Path = result) -> bool:
                    return result.exists() and bool(result.read_text())

                await until(answered, timeout=120)
                if n >= 1:  # the first re-run warms the runner's caches
                    out.append(float(result.read_text()) - t0)
    finally:
        for proc in (served, relay):
            stop_process(proc)
    return sorted(out)


def main() -> None:
    parser = make_parser("Human answer -> Prefect flow run running again.")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--suspend-runs", type=int, default=8)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ["AWAITHUMANS_QUIET"] = "1"
    log(f"machine: {machine()}")
    busy = quiet_check(args.wait_quiet)
    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-") as tmp,
        PrefectServer() as prefect_server,
        ServerProcess() as server,
    ):
        # Before the first import of prefect in this process: it reads its settings then.
        os.environ.update(prefect_server.env())
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
        os.environ["AWAITHUMANS_URL"] = server.url
        os.environ["AWAITHUMANS_API_KEY"] = server.admin_token
        t = time.perf_counter()
        paused = asyncio.run(measure_paused(server, args.runs, bare=False))
        log(f"paused: {args.runs} runs in {time.perf_counter() - t:.1f}s")
        bare = asyncio.run(measure_paused(server, args.runs, bare=True))
        log("bare pause: done")
        suspended = asyncio.run(
            measure_suspended(server, prefect_server, args.suspend_runs, Path(tmp))
        )
        log("suspended: done")

    def trio(values: list[float]) -> str:
        return f"{ms(percentile(values, 50))} / {ms(percentile(values, 95))} / {ms(values[-1])}"

    rows = [
        Row(f"answer→paused flow running again p50 (n={len(paused)})", "≤ 700 ms",
            ms(percentile(paused, 50)), "-", percentile(paused, 50) <= 0.700),
        Row("answer→paused flow running again p95 / max", "-",
            f"{ms(percentile(paused, 95))} / {ms(paused[-1])}", "-"),
        Row("ref: Prefect alone, resume_flow_run→running p50 / p95 / max", "-", trio(bare), "-"),
        Row(f"answer→suspended flow re-run has the answer p50 / p95 / max (n={len(suspended)})",
            "report", trio(suspended), "-"),
        Row("other processes' CPU before start (noise)", "-", f"{busy:.0f}% of a core", "-"),
    ]  # fmt: skip
    notes = [
        f"poll_interval {POLL_INTERVAL:g} s (the adapter's default; Prefect's own is 10 s)."
        f" Answers come at a random moment within a poll period. {WARMUP_RUNS} warm-up runs"
        " excluded for paused runs, 1 for suspended.",
        "Paused: the pausing process long-polls its task, resumes its own run (no relay) and"
        " then loads the input at once instead of waiting for the pause's next poll of"
        " Prefect; the reference row is what that poll costs.",
        "Suspended: relay → Prefect reschedules → the served runner (PREFECT_RUNNER_POLL_FREQUENCY"
        "=1) picks the run up → a new Python process imports Prefect and runs the flow again.",
        "Prefect server, awaithumans server, relay, runner and this process share the machine.",
    ]
    report(rows, args.json, notes)


if __name__ == "__main__":
    main()
