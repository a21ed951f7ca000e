"""Task-creation throughput: wrk, 32 connections, unique ~0.9 KB bodies, one server on SQLite.

    .venv/bin/python bench/create_throughput.py [--duration 15] [--json out.json]

Needs ``wrk`` (``apt-get install -y wrk``, or ``WITH_BENCH=1 scripts/system-deps.sh``).
Targets: >= 1,000 tasks/s and p99 < 100 ms, no non-2xx answers, and every answered create
really stored (rows counted in the server's SQLite file afterwards).
"""

from __future__ import annotations

import os
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import (
    CpuWindow,
    GcProbe,
    Row,
    hwm_mib,
    log,
    machine,
    make_parser,
    need_wrk,
    quiet_check,
    report,
    run_wrk,
)

from awaithumans.testing import ServerProcess

CONNECTIONS = 32  # run_wrk's default
WARMUP_SECONDS = 3


def count_rows(db: Path, tag: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM tasks WHERE idempotency_key LIKE ?", (f"bench-{tag}-%",)
        ).fetchone()
    return int(n)


def main() -> None:
    parser = make_parser("Task-creation throughput with wrk.")
    parser.add_argument("--duration", type=int, default=15, help="seconds of measured load")
    parser.add_argument(
        "--no-gc-probe",
        action="store_true",
        help="do not load bench/probe into the server (it times garbage collections)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra server environment, e.g. BENCH_PROBE_GC_FREEZE_AFTER=2 (what-if runs)",
    )
    args = parser.parse_args()
    wrk = need_wrk()
    duration = args.duration
    log(f"machine: {machine()}")
    busy_before = quiet_check(args.wait_quiet)
    probe_dir = tempfile.TemporaryDirectory(prefix="awaithumans-bench-")
    extra = dict(kv.split("=", 1) for kv in args.server_env)
    probe = None if args.no_gc_probe else GcProbe(Path(probe_dir.name))
    env = {**(probe.env() if probe else {}), **extra}
    gc_stats = None
    with probe_dir, ServerProcess(env=env) as server:
        assert server.proc is not None
        pid = server.proc.pid
        log(f"server pid {pid} at {server.url}")
        db = Path(server.database_url.split(":///", 1)[1])
        run_wrk(wrk, server.url, server.admin_token, WARMUP_SECONDS, "warmup")
        time.sleep(1)
        before = count_rows(db, "run")
        gc_before = len(probe.read(pid)) if probe else 0
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        window = CpuWindow(server=pid, me=os.getpid()).start()
        stats, raw = run_wrk(wrk, server.url, server.admin_token, duration, "run")
        window.stop()
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if probe:
            gc_stats = GcProbe.summary(probe.read(pid)[gc_before:], window.wall)
        time.sleep(1.0)  # let creates still in flight when wrk stopped commit
        stored = count_rows(db, "run") - before
        server_cpu = window.percent("server")
        # wrk has exited and been reaped: its CPU shows up in our children's usage.
        wrk_cpu = kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime
        wrk_pct = 100 * wrk_cpu / window.wall
        others = max(0.0, window.others() - wrk_pct)
        server_hwm = hwm_mib(pid)
    log("wrk output:\n" + raw)

    seconds = stats["duration_us"] / 1e6
    rps = stats["requests"] / seconds
    errors = sum(stats[k] for k in ("err_connect", "err_read", "err_write", "err_timeout"))
    bad = stats["non2xx"] + stats["err_status"]
    answered_ok = stats["requests"] - stats["non2xx"]
    # wrk counts completed responses; creates in flight at its stop may commit too (<= -c).
    stored_ok = answered_ok <= stored <= answered_ok + CONNECTIONS
    p50, p90, p99 = (stats[k] / 1000 for k in ("p50_us", "p90_us", "p99_us"))
    rows = [
        Row(
            "create: tasks/s (wrk -t2 -c32, unique bodies)",
            ">= 1,000/s",
            f"{rps:,.0f}/s",
            "125/s",
            rps >= 1000,
        ),
        Row("create: p50 latency", "-", f"{p50:.1f} ms", "-"),
        Row("create: p90 latency", "-", f"{p90:.1f} ms", "-"),
        Row("create: p99 latency", "< 100 ms", f"{p99:.1f} ms", "1.5 s", p99 < 100),
        Row(
            "create: non-2xx / socket errors",
            "0 / 0",
            f"{bad} / {errors}",
            "-",
            bad == 0 and errors == 0,
        ),
        Row(
            "create: rows stored vs 2xx answered",
            "all stored",
            f"{stored:,} vs {answered_ok:,}",
            "-",
            stored_ok,
        ),
        Row("create: server CPU during run", "-", f"{server_cpu:.0f}% of a core", "-"),
        Row("create: wrk CPU during run", "-", f"{wrk_pct:.0f}% of a core", "-"),
        Row(
            "create: other processes' CPU (noise)",
            "-",
            f"{others:.0f}% of a core (before start: {busy_before:.0f}%)",
            "-",
        ),
        Row("create: server peak RSS", "-", f"{server_hwm:.0f} MiB", "-"),
    ]
    if gc_stats:
        rows.append(
            Row(
                "create: server full GCs (gen2) during run",
                "-",
                f"{gc_stats['gen2']:.0f}, max {gc_stats['gen2_max_ms']:.0f} ms,"
                f" mean {gc_stats['gen2_mean_ms']:.0f} ms; all GC {gc_stats['gc_share']:.0f}%"
                " of wall time",
                "-",
            )
        )
    notes = [
        f"{stats['requests']:,} requests in {seconds:.1f} s after a {WARMUP_SECONDS} s warm-up;"
        f" body 920 bytes; wrk and the server share {os.cpu_count()} cores.",
    ]
    if extra:
        notes.append(f"What-if run: server environment {extra}.")
    report(rows, args.json, notes)


if __name__ == "__main__":
    main()
