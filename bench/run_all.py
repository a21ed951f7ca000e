"""Run every benchmark, one after the other, and print one combined markdown table.

    .venv/bin/python bench/run_all.py [--quick]

Each benchmark runs in its own process with its own server (so one cannot warm or load the
next), and writes its rows as JSON; this script collects them. ``--quick`` shortens the runs
for a smoke test; the numbers then mean little.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Row, machine, table

HERE = Path(__file__).resolve().parent

BENCHES: list[tuple[str, list[str], list[str]]] = [
    # (script, normal arguments, --quick arguments)
    ("create_throughput.py", [], ["--duration", "3"]),
    ("submit_latency.py", [], ["--tasks", "40"]),
    ("idle_waiters.py", [], ["--waiters", "300", "--window", "10"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    args = parser.parse_args()
    rows: list[Row] = []
    notes: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="awaithumans-bench-") as tmp:
        for script, normal, quick in BENCHES:
            out = Path(tmp) / (script + ".json")
            cmd = [sys.executable, str(HERE / script), "--json", str(out)]
            cmd += quick if args.quick else normal
            print(f"\n## {script}\n", flush=True)
            t0 = time.monotonic()
            code = subprocess.run(cmd, check=False).returncode
            took = time.monotonic() - t0
            if code != 0 or not out.exists():
                rows.append(Row(script, "-", f"FAILED (exit {code})", "-", False))
                continue
            result = json.loads(out.read_text())
            rows += [Row(**r) for r in result["rows"]]
            notes += [f"{script} ({took:.0f} s): {n}" for n in result["notes"]]

    info = machine()
    print(f"\n## All benchmarks ({time.monotonic() - started:.0f} s)\n")
    print(
        f"One `awaithumans serve` process on SQLite; load generator on the same machine"
        f" ({info['cpus']} CPUs, {info['cpu']}, Python {info['python']}).\n"
    )
    print(table(rows))
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    missed = [r.metric for r in rows if r.ok is False]
    print(f"\nTargets missed: {', '.join(missed)}" if missed else "\nAll targets met.")


if __name__ == "__main__":
    main()
