"""The ``waiters`` part of bench/replicas.py: N idle waiting agents held by one replica.

For one size N, on a fresh database and a fresh ``awaithumans serve`` on PostgreSQL:

1. the server's RSS and CPU with no waiter (``baseline`` seconds);
2. ``_waiter_fleet.py`` (its own process) creates N tasks and parks a long-poll on each;
3. an idle window: the server's RSS sampled every second (the max is reported) and its CPU
   (utime+stime), with every waiter re-polling once in a 30 s window, as the SDK does;
4. ``answer`` of the tasks, spread over the N, answered at once from this process: one
   already-open connection per answer, all requests written back to back; the time from the
   first request written to the last of those waiters seeing its answer (both clocks are
   CLOCK_MONOTONIC, shared by every process on the machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from _cluster import GroupCpu, PostgresServer, postgres_pids, replicas
from _common import CpuWindow, GcProbe, Profile, hwm_mib, log, open_fds, rss_mib, threads
from _rawhttp import Connection, Endpoint
from _refund import answer

from awaithumans.testing import ServerProcess

HERE = Path(__file__).resolve().parent


class FleetProcess:
    """``_waiter_fleet.py`` as a child process, spoken to in JSON lines."""

    def __init__(self, url: str, token: str, count: int, tag: str) -> None:
        script = str(HERE / "_waiter_fleet.py")
        self.proc = subprocess.Popen(
            [sys.executable, script, url, "--count", str(count), "--tag", tag],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, AWAITHUMANS_TOKEN=token),
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self._in: IO[str] = self.proc.stdin
        self._out: IO[str] = self.proc.stdout

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, event: str) -> dict[str, Any]:
        line = self._out.readline()
        if not line:
            raise RuntimeError(f"the waiter fleet exited ({self.proc.wait()}) before {event!r}")
        message: dict[str, Any] = json.loads(line)
        if message.get("event") != event:
            raise RuntimeError(f"expected {event!r} from the waiter fleet, got {line[:200]}")
        return message

    def ask(self, command: str, event: str) -> dict[str, Any]:
        self._in.write(command + "\n")
        self._in.flush()
        return self.expect(event)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._in.write("quit\n")
                self._in.flush()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)


async def answer_at_once(
    url: str, token: str, chosen: dict[int, str], meters: tuple[CpuWindow, GroupCpu]
) -> dict[str, Any]:
    """POST ``/complete`` for every chosen task at once, each on its own open connection.

    ``meters`` start just before the first request is written: the connections are open.
    """
    endpoint = Endpoint.of(url, token)
    conns = await asyncio.gather(*(Connection.open(endpoint) for _ in chosen))
    requests = [
        endpoint.request("POST", f"/api/tasks/{task_id}/complete", {"response": answer(i)})
        for i, task_id in chosen.items()
    ]
    acks: list[float] = []

    async def ack(conn: Connection) -> int:
        status, _ = await conn.response()
        acks.append(time.monotonic())
        return status

    for meter in meters:
        meter.start()
    t_first = time.monotonic()
    for conn, request in zip(conns, requests, strict=True):
        conn.writer.write(request)
    t_written = time.monotonic()
    statuses = await asyncio.gather(*(ack(c) for c in conns))
    for conn in conns:
        conn.close()
    return {
        "t_first": t_first,
        "write_s": t_written - t_first,
        "acks": sorted(a - t_first for a in acks),
        "non200": sum(1 for s in statuses if s != 200),
    }


def measure_size(
    pg: PostgresServer,
    n: int,
    *,
    answer_count: int,
    window: float,
    baseline: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Everything the table says about ``n`` waiters held by one server.

    With ``profile`` (a folder), the server is sampled by py-spy during the idle window and
    the burst (``idle-N.txt``, ``burst-N.txt``); the sampling costs the server some CPU.
    """
    out: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory(prefix="awaithumans-bench-") as tmp:
        # bench/probe times the server's garbage collections: thousands of parked requests
        # are thousands of live objects for each full collection to walk.
        probe = GcProbe(Path(tmp))
        with replicas(pg, f"waiters_{n}", 1, env=probe.env()) as (server,):
            assert server.proc is not None
            pid = server.proc.pid
            out["rss_empty"] = rss_mib(pid)
            base = CpuWindow(server=pid).start()
            time.sleep(baseline)
            out["cpu_empty"] = base.stop().percent("server")
            tag = f"idle{n}-{os.urandom(3).hex()}"
            fleet = FleetProcess(server.url, server.admin_token, n, tag)
            try:
                created = fleet.expect("created")
                out["create_s"] = created["seconds"]
                out["rss_created"] = rss_mib(pid)
                log(f"{n:,} tasks created in {out['create_s']:.1f} s; parking their long-polls")
                out["park_s"] = fleet.expect("parked")["seconds"]
                log(f"{n:,} long-polls parked in {out['park_s']:.1f} s; idle {window:.0f} s")
                time.sleep(2)  # the launch's garbage and connection setup settle first
                with Profile(pid, profile and profile / f"idle-{n}.txt"):
                    out.update(idle_window(pid, fleet, probe, window))
                ids: list[str] = created["ids"]
                step = max(1, n // answer_count)
                chosen = {i: ids[i] for i in range(0, n, step)[:answer_count]}
                with Profile(pid, profile and profile / f"burst-{n}.txt"):
                    out.update(burst(pg, server, fleet, probe, chosen))
                out["rss_hwm"] = hwm_mib(pid)
            finally:
                fleet.close()
    return out


def idle_window(pid: int, fleet: FleetProcess, probe: GcProbe, window: float) -> dict[str, Any]:
    """The server's CPU over ``window`` s and its RSS every second, while waiters only wait."""
    before = fleet.ask("stats", "stats")
    gc_mark = len(probe.read(pid))
    cpu = CpuWindow(server=pid, fleet=fleet.pid).start()
    rss = [rss_mib(pid)]
    end = time.monotonic() + window
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        rss.append(rss_mib(pid))
    cpu.stop()
    after = fleet.ask("stats", "stats")
    out = {
        "gc_window": GcProbe.summary(probe.read(pid)[gc_mark:], cpu.wall),
        "cpu": cpu.percent("server"),
        "cpu_s": cpu.used["server"],
        "fleet_cpu": cpu.percent("fleet"),
        "others_cpu": cpu.others(),
        "window_s": cpu.wall,
        "rss_max": max(rss),
        "rss_start": rss[0],
        "rss_end": rss[-1],
        "threads": threads(pid),
        "fds": open_fds(pid),
        "repolls": after["polls"] - before["polls"],
        "idle_errors": after["errors"] + after["reconnects"],
        "idle_returned": after["returned"],
    }
    log(f"idle: server {out['cpu']:.1f}% of a core, RSS max {out['rss_max']:.0f} MiB")
    return out


def burst(
    pg: PostgresServer, server: ServerProcess, fleet: FleetProcess, probe: GcProbe,
    chosen: dict[int, str],
) -> dict[str, Any]:  # fmt: skip
    """Answer ``chosen`` (index -> task id) at once; when and how each waiter returned."""
    assert server.proc is not None
    pid = server.proc.pid
    gc_mark = len(probe.read(pid))
    busy = CpuWindow(server=pid, fleet=fleet.pid)
    db_cpu = GroupCpu(lambda: postgres_pids(pg))
    sent = asyncio.run(answer_at_once(server.url, server.admin_token, chosen, (busy, db_cpu)))
    got = fleet.ask(f"collect {len(chosen)} 60", "collected")["returns"]
    busy.stop()
    db_cpu.stop()
    returned = sorted(t - sent["t_first"] for t, _, _ in got.values())
    right = sum(
        1
        for i, task_id in chosen.items()
        if task_id in got and got[task_id][1] == "completed" and got[task_id][2] == answer(i)
    )
    log(
        f"{len(chosen):,} answered at once: last return after"
        f" {max(returned, default=float('nan')):.2f} s, {right} right"
    )
    return {
        "gc_burst": GcProbe.summary(probe.read(pid)[gc_mark:], busy.wall),
        "answered": len(chosen),
        "answer_non200": sent["non200"],
        "answer_write_s": sent["write_s"],
        "last_ack_s": sent["acks"][-1],
        "returns": returned,
        "returned_right": right,
        "returned_other": len(set(got) - set(chosen.values())),
        "burst_wall_s": busy.wall,
        "burst_server_cpu_s": busy.used["server"],
        "burst_fleet_cpu_s": busy.used["fleet"],
        "burst_db_cpu_s": db_cpu.used,
        "burst_others": max(0.0, busy.others() - 100 * db_cpu.used / busy.wall),
    }
