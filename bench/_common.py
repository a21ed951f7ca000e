"""Shared helpers for the benchmark scripts (not a test module; run the scripts by hand).

Each script measures one thing against ONE ``awaithumans serve`` process on SQLite, started
with :class:`awaithumans.testing.ServerProcess` on 127.0.0.1, and prints a markdown table of
:class:`Row`. ``--json PATH`` also writes the rows, which ``run_all.py`` collects.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The scripts run as ``python bench/x.py`` from anywhere; make the repository importable
# even when the package is not installed into the interpreter that runs them.
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CLK_TCK = os.sysconf("SC_CLK_TCK")
HERE = Path(__file__).resolve().parent
CREATE_LUA = HERE / "wrk" / "create.lua"


@dataclass
class Row:
    metric: str
    target: str
    measured: str
    published: str
    ok: bool | None = None  # None: informational, no target

    def cells(self) -> list[str]:
        mark = "" if self.ok is None else (" ✅" if self.ok else " ❌")
        return [self.metric, self.target, self.measured + mark, self.published]


def table(rows: list[Row]) -> str:
    head = ["metric", "target", "measured", "published 0.1.12"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def make_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="also write the result rows to this file")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before starting, wait up to this long for other processes to go quiet",
    )
    return parser


def report(rows: list[Row], json_path: Path | None, notes: list[str] | None = None) -> None:
    print(table(rows))
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    sys.stdout.flush()
    if json_path is not None:
        json_path.write_text(
            json.dumps({"rows": [asdict(r) for r in rows], "notes": notes or []}, indent=2)
        )


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- /proc readings -------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (all its threads)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces and parentheses; fields restart after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def hwm_mib(pid: int) -> float:
    return _status_kib(pid, "VmHWM") / 1024


def threads(pid: int) -> int:
    return int(_status_value(pid, "Threads"))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _status_value(pid: int, key: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(key)


def _status_kib(pid: int, key: str) -> int:
    return int(_status_value(pid, key).split()[0])


def machine_busy_seconds() -> float:
    """CPU seconds all processes on this machine have used since boot (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


class CpuWindow:
    """CPU used by some processes between ``start()`` and ``stop()``, as % of one core.

    Also what the whole machine used, so ``others()`` tells how much CPU processes outside
    the benchmark took meanwhile: on a shared 2-core box that is the main source of noise.
    """

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self.machine = 0.0

    def start(self) -> CpuWindow:
        self._t0 = time.monotonic()
        self._m0 = machine_busy_seconds()
        self._c0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> CpuWindow:
        self.wall = time.monotonic() - self._t0
        self.machine = machine_busy_seconds() - self._m0
        self.used = {}
        for name, pid in self.pids.items():
            try:
                self.used[name] = cpu_seconds(pid) - self._c0[name]
            except OSError:  # exited (wrk): its last reading is lost, count nothing
                self.used[name] = 0.0
        return self

    def percent(self, name: str) -> float:
        return 100.0 * self.used[name] / self.wall if self.wall else 0.0

    def others(self) -> float:
        """% of one core used by every process not in ``pids`` (and not their children)."""
        if not self.wall:
            return 0.0
        return max(0.0, 100.0 * (self.machine - sum(self.used.values())) / self.wall)


QUIET_PERCENT = 25.0


def quiet_check(max_wait: float = 30.0, sample: float = 2.0) -> float:
    """Wait (up to ``max_wait`` s) until other processes use < 25% of a core; return their use.

    The benchmarks share a small machine with whatever else runs there (test suites...). A
    busy machine slows the server and the load generator alike, so wait a little for quiet,
    then go ahead anyway, and report the noise next to the numbers.
    """
    deadline = time.monotonic() + max_wait
    while True:
        m0 = machine_busy_seconds()
        time.sleep(sample)
        busy = 100.0 * (machine_busy_seconds() - m0) / sample
        if busy < QUIET_PERCENT or time.monotonic() >= deadline:
            break
        log(f"other processes use {busy:.0f}% of a core; waiting for a quieter machine")
    if busy >= QUIET_PERCENT:
        log(f"warning: the machine stays busy ({busy:.0f}% of a core); numbers will be noisy")
    return busy


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": sys.version.split()[0]}


class GcProbe:
    """Garbage-collection pauses of the server, recorded by ``bench/probe/sitecustomize.py``.

    Pass ``env()`` to the server; ``read(pid)`` returns every collection so far as
    (generation, seconds, objects collected).
    """

    def __init__(self, directory: Path, **what_if: str) -> None:
        self.path = directory / "gc-pauses.json"
        self.what_if = what_if

    def env(self) -> dict[str, str]:
        path = [str(REPO / "bench" / "probe")]
        if os.environ.get("PYTHONPATH"):
            path.append(os.environ["PYTHONPATH"])
        return {
            "PYTHONPATH": os.pathsep.join(path),
            "BENCH_PROBE_GC_OUT": str(self.path),
            **self.what_if,
        }

    def read(self, pid: int, timeout: float = 5.0) -> list[tuple[int, float, int]]:
        import signal

        before = self.path.stat().st_mtime_ns if self.path.exists() else None
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.path.exists() and self.path.stat().st_mtime_ns != before:
                rows = json.loads(self.path.read_text())
                return [(int(g), float(s), int(n)) for g, s, n in rows]
            time.sleep(0.02)
        raise TimeoutError("the server did not write its GC record (probe not loaded?)")

    @staticmethod
    def summary(pauses: list[tuple[int, float, int]], wall: float) -> dict[str, float]:
        full = [p[1] for p in pauses if p[0] == 2]
        every = [p[1] for p in pauses]
        return {
            "collections": len(every),
            "gen2": len(full),
            "gen2_max_ms": 1000 * max(full, default=0.0),
            "gen2_mean_ms": 1000 * sum(full) / len(full) if full else 0.0,
            "gc_total_ms": 1000 * sum(every),
            "max_ms": 1000 * max(every, default=0.0),
            "gc_share": 100 * sum(every) / wall if wall else 0.0,
            # Per generation: how many collections and their total time.
            **{f"gen{g}_n": sum(1 for p in pauses if p[0] == g) for g in (0, 1)},
            **{f"gen{g}_ms": 1000 * sum(p[1] for p in pauses if p[0] == g) for g in (0, 1)},
        }


# -- load generation -------------------------------------------------------------------


def need_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        print(
            "wrk is not installed. Install it with:\n"
            "    sudo apt-get install -y wrk\n"
            "or: WITH_BENCH=1 sudo bash scripts/system-deps.sh",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return path


def run_wrk(
    wrk: str,
    url: str,
    token: str,
    seconds: int,
    tag: str,
    *,
    threads: int = 2,
    connections: int = 32,
) -> tuple[dict[str, Any], str]:
    """``wrk --latency -s wrk/create.lua`` against ``url``/api/tasks: (its numbers, its output).

    The numbers come from the script's ``BENCH_JSON`` line, plus ``non2xx`` from wrk's summary.
    """
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(CREATE_LUA),
        f"{url}/api/tasks",
        "--",
        tag,
    ]
    log(" ".join(cmd))
    env = dict(os.environ, AWAITHUMANS_TOKEN=token)
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    marker = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    stats: dict[str, Any] = json.loads(marker.removeprefix("BENCH_JSON "))
    found = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    stats["non2xx"] = int(found.group(1)) if found else 0
    return stats, out


def raise_fd_limit(need: int) -> int:
    """Raise this process's soft open-file limit towards ``need`` (at most the hard limit).

    Children started afterwards (the server, a load generator) inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    new_soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if new_soft != resource.RLIM_INFINITY and new_soft < need:
        log(f"warning: open-file limit is {new_soft}, wanted {need}; waiters may fail")
    return new_soft


class Profile:
    """``py-spy record`` attached to one process while a ``with`` block runs (``--profile``).

    Writes collapsed stacks (``--format raw``: one line per stack and its sample count) to
    ``path``; ``py-spy``'s own flame graph tools, or ``sort -t' ' -k2 -n``, read them. A None
    path profiles nothing, so callers need no branch.
    """

    def __init__(self, pid: int, path: Path | None) -> None:
        self.pid = pid
        self.path = path
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profile:
        if self.path is None:
            return self
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        command = [spy, "record", "--pid", str(self.pid), "--format", "raw", "--rate", "250"]
        command += ["--nonblocking", "--output", str(self.path)]
        self._proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # attached before the measured work starts
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
        self._proc.wait(30)
        log(f"profile: {self.path}")
