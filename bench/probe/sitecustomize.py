"""A probe loaded into the benchmarked server (PYTHONPATH=bench/probe); no server code changes.

Python imports ``sitecustomize`` at start-up when it is on the path. This one records the
duration of every garbage collection (via ``gc.callbacks``) and writes them as JSON to
``$BENCH_PROBE_GC_OUT`` when the process gets SIGUSR1, so a benchmark can tell how long the
event loop stood still in the collector during its measured window.

What-if switches, for comparing against the unchanged server (off unless set):

- ``BENCH_PROBE_GC_FREEZE_AFTER=2``: ``gc.collect(); gc.freeze()`` 2 s after start-up, so
  full collections stop re-scanning everything the app allocated while starting.
- ``BENCH_PROBE_GC_THRESHOLD=10000,20,20``: ``gc.set_threshold(...)``.
- ``BENCH_PROBE_UVLOOP=1``: make ``asyncio.run`` use uvloop.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import threading
import time
from typing import Any

_out = os.environ.get("BENCH_PROBE_GC_OUT")
if _out:
    _pauses: list[tuple[int, float, int]] = []
    _started = [0.0]

    def _on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
        else:
            _pauses.append(
                (info["generation"], time.perf_counter() - _started[0], info.get("collected", 0))
            )

    _path: str = _out

    def _dump(*_: object) -> None:
        tmp = _path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(_pauses, f)
        os.replace(tmp, _path)

    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _dump)

if os.environ.get("BENCH_PROBE_GC_THRESHOLD"):
    gc.set_threshold(*(int(v) for v in os.environ["BENCH_PROBE_GC_THRESHOLD"].split(",")))

if os.environ.get("BENCH_PROBE_GC_FREEZE_AFTER"):

    def _freeze() -> None:
        gc.collect()
        gc.freeze()

    _timer = threading.Timer(float(os.environ["BENCH_PROBE_GC_FREEZE_AFTER"]), _freeze)
    _timer.daemon = True
    _timer.start()

if os.environ.get("BENCH_PROBE_UVLOOP"):
    import asyncio

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
