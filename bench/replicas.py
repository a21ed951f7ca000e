"""Replicas on PostgreSQL behind HAProxy, and 10,000 idle waiting agents held by one replica.

    .venv/bin/python bench/replicas.py [--only create,cross,waiters] [--sizes 1000,10000]

One throwaway PostgreSQL cluster (``tests/support/postgres.py``); each part runs
``awaithumans serve`` replicas on a fresh database in it (``ServerProcess``), HAProxy in
front where a load balancer belongs (``tests/support/haproxy.py``). Three parts:

- ``create``: ``POST /api/tasks`` with ``wrk -t2 -c32`` (``wrk/create.lua``, unique ~0.9 KB
  bodies) through HAProxy, with 1 and with 2 replicas, after a 3 s warm-up; 1 replica
  direct, without HAProxy, for comparison. Rows are counted in PostgreSQL afterwards. On a
  2-core machine two replicas, HAProxy, PostgreSQL and wrk share the same two cores: the
  second replica shows contention, not scaling.
- ``cross``: ``await_human`` long-polls replica A, the answer is POSTed to replica B; the
  time from just before the POST to ``await_human`` returning (and from B's 200). One task
  at a time (``--tasks``), then ``--burst`` parked waiters answered at once.
- ``waiters``: for each ``--sizes`` N, one replica holds N idle waiters from a separate
  process (``_waiter_fleet.py``): the server's RSS and CPU over ``--window`` s, then
  ``--answer`` of them answered at once (``_many_waiters.py``).

Targets (issue 16): cross-replica answer -> return p99 < 50 ms; at 10,000 waiters RSS <
600 MiB, idle CPU < 10 % of a core, 1,000 answered at once all returned within 2 s.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from pathlib import Path
from typing import Any

import httpx
from _cluster import GroupCpu, HAProxy, PostgresServer, postgres_pids, replicas, settled_count
from _common import (
    CpuWindow,
    Row,
    log,
    machine,
    make_parser,
    ms,
    need_wrk,
    percentile,
    quiet_check,
    raise_fd_limit,
    report,
    run_wrk,
    table,
)
from _many_waiters import measure_size
from _refund import one_batch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PARTS = ("create", "cross", "waiters")
WARMUP_SECONDS = 3
CONNECTIONS = 32  # run_wrk's default
CROSS_WARMUP = 10
RSS_TARGET_MIB = 600
CPU_TARGET = 10.0
BURST_TARGET_S = 2.0
CROSS_P99_TARGET_S = 0.050


# -- create -----------------------------------------------------------------------------


def create_run(
    pg: PostgresServer, wrk: str, database: str, url: str, token: str, pids: dict[str, int],
    seconds: int, tag: str,
) -> dict[str, Any]:  # fmt: skip
    """One measured wrk run at ``url``; CPU of the named processes, PostgreSQL and wrk."""
    before = settled_count(pg, database, f"bench-{tag}-", 0)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    window = CpuWindow(**pids).start()
    db_cpu = GroupCpu(lambda: postgres_pids(pg)).start()
    stats, _ = run_wrk(wrk, url, token, seconds, tag, connections=CONNECTIONS)
    db_cpu.stop()
    window.stop()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ok = stats["requests"] - stats["non2xx"]
    stored = settled_count(pg, database, f"bench-{tag}-", before + ok) - before
    # wrk has exited and been reaped: its CPU shows up in our children's usage.
    wrk_s = kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime
    wall = window.wall
    return {
        "requests": stats["requests"],
        "cpu_ms": {name: 1000 * window.used[name] / stats["requests"] for name in pids},
        "rps": stats["requests"] / (stats["duration_us"] / 1e6),
        "p50": stats["p50_us"] / 1e6,
        "p99": stats["p99_us"] / 1e6,
        "bad": stats["non2xx"] + stats["err_status"],
        "errors": sum(stats[k] for k in ("err_connect", "err_read", "err_write", "err_timeout")),
        "ok": ok,
        "stored": stored,
        "stored_ok": ok <= stored <= ok + CONNECTIONS,
        "cpu": {name: window.percent(name) for name in pids},
        "db_cpu": 100 * db_cpu.used / wall,
        "wrk_cpu": 100 * wrk_s / wall,
        "others": max(0.0, window.others() - 100 * (wrk_s + db_cpu.used) / wall),
    }


def part_create(pg: PostgresServer, seconds: int) -> dict[str, dict[str, Any]]:
    wrk = need_wrk()
    out: dict[str, dict[str, Any]] = {}
    for n in (1, 2):
        database = f"create_{n}"
        # Backend connections kept alive (HAProxy's default, what a deployment runs); the
        # tests' proxy closes them after each response, which costs a replica ~0.2 ms more
        # CPU per create and HAProxy twice its CPU (measured on this box).
        with (
            replicas(pg, database, n) as servers,
            HAProxy([s.url for s in servers], server_close=False) as proxy,
        ):
            token = servers[0].admin_token
            pids = {f"replica {k + 1}": s.proc.pid for k, s in enumerate(servers) if s.proc}
            pids["haproxy"] = proxy.pid
            log(f"{n} replica(s) behind haproxy (pid {proxy.pid}) at {proxy.url}")
            run_wrk(wrk, proxy.url, token, WARMUP_SECONDS, "warmup", connections=CONNECTIONS)
            tag = f"proxy{n}"
            out[f"proxy{n}"] = create_run(pg, wrk, database, proxy.url, token, pids, seconds, tag)
            if n == 1:
                del pids["haproxy"]
                url = servers[0].url
                out["direct1"] = create_run(pg, wrk, database, url, token, pids, seconds, "direct1")
    return out


def create_rows(res: dict[str, dict[str, Any]], seconds: int) -> list[Row]:
    rows = []
    labels = {
        "proxy1": "1 replica via HAProxy",
        "proxy2": "2 replicas via HAProxy",
        "direct1": "1 replica direct (no HAProxy)",
    }
    for key in ("proxy1", "proxy2", "direct1"):
        r = res[key]
        cpu = ", ".join(
            f"{name} {pct:.0f}% ({r['cpu_ms'][name]:.2f} ms/create)"
            for name, pct in r["cpu"].items()
        )
        rows.append(
            Row(
                f"create: {labels[key]}, tasks/s (wrk -c32, {seconds} s)",
                "-",
                f"{r['rps']:,.0f}/s, p50 {ms(r['p50'])}, p99 {ms(r['p99'])}",
                "-",
            )
        )
        rows.append(
            Row(
                f"create: {labels[key]}, CPU (% of a core)",
                "-",
                f"{cpu}, PostgreSQL {r['db_cpu']:.0f}%, wrk {r['wrk_cpu']:.0f}%,"
                f" others {r['others']:.0f}%",
                "-",
            )
        )
    bad = sum(r["bad"] for r in res.values())
    errors = sum(r["errors"] for r in res.values())
    stored = sum(r["stored"] for r in res.values())
    ok = sum(r["ok"] for r in res.values())
    rows.append(
        Row(
            "create: non-2xx / socket errors; rows stored vs 2xx answered",
            "0 / 0; all stored",
            f"{bad} / {errors}; {stored:,} vs {ok:,}",
            "-",
            bad == 0 and errors == 0 and all(r["stored_ok"] for r in res.values()),
        )
    )
    return rows


# -- cross ------------------------------------------------------------------------------


async def cross_measure(a: str, b: str, token: str, tasks: int, burst: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=a, headers=headers, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b, headers=headers, timeout=30) as on_b,
    ):
        run = os.urandom(4).hex()
        for i in range(CROSS_WARMUP):
            await one_batch(on_a, a, token, i, 1, f"{run}-warm", answer_via=on_b)
        seq: list[tuple[float, float]] = []
        for i in range(tasks):
            seq += await one_batch(on_a, a, token, i, 1, f"{run}-seq", answer_via=on_b)
        log(f"cross: {tasks} tasks answered on B one at a time")
        par = await one_batch(on_a, a, token, 0, burst, f"{run}-burst", answer_via=on_b)
        log(f"cross: {burst} parked on A answered at once on B")
    return {
        "seq": sorted(lat for lat, _ in seq),
        "seq_post": sorted(post for _, post in seq),
        "seq_after_200": sorted(lat - post for lat, post in seq),
        "burst": sorted(lat for lat, _ in par),
    }


def part_cross(pg: PostgresServer, tasks: int, burst: int) -> dict[str, Any]:
    with replicas(pg, "cross", 2) as (a, b):
        assert a.proc is not None
        assert b.proc is not None
        window = CpuWindow(replica_a=a.proc.pid, replica_b=b.proc.pid).start()
        res = asyncio.run(cross_measure(a.url, b.url, a.admin_token, tasks, burst))
        window.stop()
    res["others"] = window.others()
    return res


def cross_rows(res: dict[str, Any]) -> list[Row]:
    seq, after, post, burst = res["seq"], res["seq_after_200"], res["seq_post"], res["burst"]
    p99 = percentile(seq, 99)
    return [
        Row(f"cross: answer on B → return on A, p50 / p99 (one at a time, n={len(seq)})",
            "p99 < 50 ms", f"{ms(percentile(seq, 50))} / {ms(p99)}", "-",
            p99 < CROSS_P99_TARGET_S),
        Row("cross: the same from B's 200, p50 / p99 / max", "-",
            f"{ms(percentile(after, 50))} / {ms(percentile(after, 99))} / {ms(after[-1])}", "-"),
        Row("cross: POST /complete on B, round trip p50 / p99", "-",
            f"{ms(percentile(post, 50))} / {ms(percentile(post, 99))}", "-"),
        Row(f"cross: {len(burst)} parked on A, answered at once on B, p50 / p99 / max", "-",
            f"{ms(percentile(burst, 50))} / {ms(percentile(burst, 99))} / {ms(burst[-1])}", "-"),
    ]  # fmt: skip


# -- waiters ----------------------------------------------------------------------------


def waiter_rows(results: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for r in results:
        n = r["n"]
        per_kib = 1024 * (r["rss_max"] - r["rss_created"]) / n
        per_poll = f"{1000 * r['cpu_s'] / r['repolls']:.2f} ms CPU each" if r["repolls"] else "-"
        gc_share = 100 * r["gc_window"]["gc_total_ms"] / 1000 / r["cpu_s"] if r["cpu_s"] else 0.0
        returns = r["returns"]
        last = returns[-1] if len(returns) == r["answered"] else float("inf")
        all_right = r["returned_right"] == r["answered"] and r["returned_other"] == 0
        rows += [
            Row(f"waiters: {n:,} idle, server RSS (max over the window)",
                f"< {RSS_TARGET_MIB} MiB", f"{r['rss_max']:.0f} MiB (no waiter"
                f" {r['rss_empty']:.0f}, tasks made {r['rss_created']:.0f}; +{per_kib:.0f}"
                " KiB per waiter)", "-", r["rss_max"] < RSS_TARGET_MIB),
            Row(f"waiters: {n:,} idle, server CPU over {r['window_s']:.0f} s",
                f"< {CPU_TARGET:.0f}% of a core", f"{r['cpu']:.1f}% ({r['repolls']:,} re-polls,"
                f" {per_poll}, {gc_share:.0f}% of it in GC; no waiter {r['cpu_empty']:.1f}%)", "-",
                r["cpu"] < CPU_TARGET),
            Row(f"waiters: {n:,} idle, {r['answered']:,} answered at once → last return",
                f"< {BURST_TARGET_S:.0f} s", f"{last:.2f} s (p50 {percentile(returns, 50):.2f} s;"
                f" last answer's 200 {r['last_ack_s']:.2f} s; {r['returned_right']:,} right)", "-",
                last < BURST_TARGET_S and all_right and r["answer_non200"] == 0),
            Row(f"waiters: {n:,} idle, long-polls lost or refused / woken unanswered", "0 / 0",
                f"{r['idle_errors']} / {r['idle_returned'] + r['returned_other']}", "-",
                r["idle_errors"] == 0 and r["idle_returned"] + r["returned_other"] == 0),
        ]  # fmt: skip
    if len(results) >= 2:
        lo, hi = results[0], results[-1]
        extra_kib = 1024 * (hi["rss_max"] - lo["rss_max"]) / (hi["n"] - lo["n"])
        lo_last, hi_last = max(lo["returns"], default=0.0), max(hi["returns"], default=0.0)
        rows.append(
            Row(
                f"waiters: growth {lo['n']:,} → {hi['n']:,}",
                "-",
                f"RSS {lo['rss_max']:.0f} → {hi['rss_max']:.0f} MiB ({extra_kib:.0f} KiB per"
                f" extra waiter); idle CPU {lo['cpu']:.1f}% → {hi['cpu']:.1f}%"
                f" (×{ratio(hi['cpu'], lo['cpu'])}); {hi['answered']:,} answered, last return"
                f" {lo_last:.2f} → {hi_last:.2f} s (×{ratio(hi_last, lo_last)})",
                "-",
            )
        )
    return rows


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}" if b > 0 else "-"


def gc(stats: dict[str, float]) -> str:
    return (
        f"{stats['gc_total_ms']:.0f} ms (gen0 {stats['gen0_n']:.0f} x, {stats['gen0_ms']:.0f} ms;"
        f" gen1 {stats['gen1_n']:.0f} x, {stats['gen1_ms']:.0f} ms; gen2 {stats['gen2']:.0f} x;"
        f" longest {stats['max_ms']:.0f} ms)"
    )


def waiter_notes(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['n']:,} waiters: tasks created in {r['create_s']:.1f} s, long-polls parked in"
        f" {r['park_s']:.1f} s; during the window the waiter process used {r['fleet_cpu']:.1f}%"
        f" of a core, other processes (PostgreSQL included) {r['others_cpu']:.0f}%; server"
        f" threads {r['threads']}, open fds {r['fds']:,}, RSS {r['rss_start']:.0f} MiB at the"
        f" window's start and {r['rss_end']:.0f} at its end, peak {r['rss_hwm']:.0f} MiB"
        " (burst included);"
        f" the {r['answered']:,} answers took {1000 * r['answer_write_s']:.0f} ms to write;"
        f" from the first to the last return the server used {r['burst_server_cpu_s']:.2f} s"
        f" of CPU in {r['burst_wall_s']:.2f} s, PostgreSQL {r['burst_db_cpu_s']:.2f} s, the"
        f" waiter process {r['burst_fleet_cpu_s']:.2f} s, other processes"
        f" {r['burst_others']:.0f}% of a core. The server's garbage collections: in the idle"
        f" window {gc(r['gc_window'])}, in the burst {gc(r['gc_burst'])}."
        for r in results
    ]


# -- main -------------------------------------------------------------------------------


def main() -> None:
    parser = make_parser("Replicas on PostgreSQL behind HAProxy; many idle waiters.")
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts, of {','.join(PARTS)}")
    parser.add_argument("--duration", type=int, default=15, help="create: seconds per wrk run")
    parser.add_argument("--tasks", type=int, default=200, help="cross: tasks one at a time")
    parser.add_argument("--burst", type=int, default=100, help="cross: waiters answered at once")
    parser.add_argument("--sizes", default="1000,10000", help="waiters: comma-separated sizes")
    parser.add_argument("--answer", type=int, default=1000, help="waiters: answered at once")
    parser.add_argument("--window", type=float, default=30.0, help="waiters: idle seconds")
    parser.add_argument("--baseline", type=float, default=10.0, help="waiters: seconds, none")
    parser.add_argument(
        "--profile", type=Path, help="waiters: py-spy the server into this folder (slows it)"
    )
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {PARTS}")
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    os.environ["AWAITHUMANS_QUIET"] = "1"
    # The servers inherit the limit: the largest size's sockets plus the answers' at once.
    raise_fd_limit(max(sizes) + args.answer + 2048)
    log(f"machine: {machine()}")
    busy_before = quiet_check(args.wait_quiet)
    started = time.monotonic()
    rows: list[Row] = []
    notes: list[str] = []
    with PostgresServer() as pg:
        log(f"PostgreSQL on port {pg.port}")
        if "create" in parts:
            rows += create_rows(part_create(pg, args.duration), args.duration)
            notes.append(
                f"create: {os.cpu_count()} cores shared by the replicas, HAProxy, PostgreSQL"
                " and wrk: a second replica on the same machine adds contention, not capacity;"
                " it shows the proxy spreads the load and replicas do not get in each other's"
                " way in the database, not how replicas on their own machines scale."
            )
        if "cross" in parts:
            cross = part_cross(pg, args.tasks, args.burst)
            rows += cross_rows(cross)
            notes.append(
                "cross: await_human (the SDK) long-polls replica A; the answer is POSTed to"
                " replica B from an already-connected client; latency from just before the POST"
                f" to the return. Other processes used {cross['others']:.0f}% of a core."
            )
        if "waiters" in parts:
            results = []
            for n in sizes:
                results.append(
                    measure_size(
                        pg,
                        n,
                        answer_count=args.answer,
                        window=args.window,
                        baseline=args.baseline,
                        profile=args.profile,
                    )
                )
            rows += waiter_rows(results)
            notes += waiter_notes(results)
    notes.append(
        f"PostgreSQL {pg_version()} (fsync off, throwaway cluster) and every process on one"
        f" machine: {machine()}; other processes used {busy_before:.0f}% of a core before the"
        f" start; the run took {time.monotonic() - started:.0f} s."
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report(rows, args.json or RESULTS / f"replicas-{stamp}.json", notes)
    (RESULTS / f"replicas-{stamp}.md").write_text(
        table(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    )
    log(f"saved under {RESULTS}/replicas-{stamp}.*")


def pg_version() -> str:
    from tests.support.postgres import find_postgres_bindir

    return find_postgres_bindir().parent.name


if __name__ == "__main__":
    main()
