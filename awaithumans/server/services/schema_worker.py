"""Schema checks too big for the event loop, in worker processes the server can stop.

A thread would not do: ``jsonschema_rs`` holds the GIL while it compiles or validates (a
1.8 s validation in a thread stalled the event loop for all of its 1.8 s), and a thread
cannot be stopped when it runs over its budget. A child process can be killed, and the
server's loop never waits on it: the blocking pipe work runs on a few threads of its own.

The workers run :func:`schema_rules.serve_worker`, loaded by file path (with
:mod:`schema_shape`) so that a worker starts with ``jsonschema_rs`` alone (tens of
milliseconds) rather than the whole package. They run at a lower priority (``nice 5``).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from awaithumans.server.services import schema_rules, schema_shape

# Loads schema_shape.py and schema_rules.py by path, as modules of their own, and runs the
# worker loop.
_BOOT = """
import importlib.util, sys
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
shape = load("awaithumans_schema_shape", sys.argv[1])
load("awaithumans_schema_rules", sys.argv[2]).serve_worker(shape.measure)
"""
_START_SECONDS = 30.0


class Busy(Exception):
    """No worker came free within the budget."""


class Overdue(Exception):
    """The worker did not answer within the budget, or died; it has been stopped."""


class _Worker:
    def __init__(self) -> None:
        # -P: the server's working directory must not shadow a module the worker imports.
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-P", "-c", _BOOT, schema_shape.__file__, schema_rules.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        try:
            ready = self._read(time.monotonic() + _START_SECONDS)
        except Overdue:
            self.kill()
            raise RuntimeError("the schema worker did not start") from None
        if ready != {"ready": True}:
            self.kill()
            raise RuntimeError(f"the schema worker started wrongly: {ready!r}")

    def exchange(self, payload: bytes, deadline: float) -> dict[str, Any]:
        stdin = self._proc.stdin
        assert stdin is not None
        data = memoryview(len(payload).to_bytes(4, "big") + payload)
        try:
            # The worker is idle (it reads its next request), so this only waits for it
            # to drain the pipe.
            while data:
                data = data[os.write(stdin.fileno(), data) :]
        except OSError:
            raise Overdue from None
        return self._read(deadline)

    def _read(self, deadline: float) -> dict[str, Any]:
        head = self._read_exactly(4, deadline)
        reply: dict[str, Any] = json.loads(self._read_exactly(int.from_bytes(head), deadline))
        return reply

    def _read_exactly(self, size: int, deadline: float) -> bytes:
        stdout = self._proc.stdout
        assert stdout is not None
        fd = stdout.fileno()
        got = bytearray()
        while len(got) < size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise Overdue
            chunk = os.read(fd, size - len(got))
            if not chunk:
                raise Overdue  # the worker died
            got += chunk
        return bytes(got)

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()


class WorkerPool:
    """Up to ``size`` schema workers, started on first use, each taking one request at a
    time; a worker that runs over its budget is killed and replaced on next use."""

    def __init__(self, size: int = 2) -> None:
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(size):
            self._idle.put(None)
        self._started: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        # Its own threads: a queue of heavy checks must not hold up the loop's default
        # executor (and each waits at most its budget for a worker).
        self._threads = ThreadPoolExecutor(max_workers=size + 4, thread_name_prefix="schemas")

    async def call(
        self, request: dict[str, Any], schema_json: str, budget: float
    ) -> dict[str, Any]:
        """Send ``request`` (with the schema's JSON spliced in) to a free worker.

        Raises:
            Busy: No worker came free within ``budget`` seconds.
            Overdue: The worker took longer than ``budget`` (or died); it was stopped.
        """
        # Dumping a large document takes milliseconds; splicing avoids dumping the schema.
        payload = ('{"schema":' + schema_json + "," + json.dumps(request)[1:]).encode()
        deadline = time.monotonic() + budget
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._call, payload, deadline, budget)

    def _call(self, payload: bytes, deadline: float, budget: float) -> dict[str, Any]:
        try:
            worker = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise Busy from None
        try:
            if worker is None:
                worker = self._start()
            # The budget is the check's own: waiting for the worker is bounded above.
            return worker.exchange(payload, time.monotonic() + budget)
        except Overdue:
            if worker is not None:
                self._stop(worker)
            worker = None
            raise
        finally:
            self._idle.put(worker)

    def _start(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the schema workers are stopped")
        worker = _Worker()
        with self._lock:
            self._started.add(worker)
        return worker

    def _stop(self, worker: _Worker) -> None:
        with self._lock:
            self._started.discard(worker)
        worker.kill()

    def close(self) -> None:
        """Stop every worker (a check still running gets :class:`Overdue`)."""
        with self._lock:
            self._closed = True
            workers = list(self._started)
            self._started.clear()
        for worker in workers:
            worker.kill()
        self._threads.shutdown(wait=False, cancel_futures=True)
