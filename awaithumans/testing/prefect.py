"""A real Prefect server for tests: ``prefect server start`` on a free port, private home.

Prefect's "ephemeral" mode (no ``PREFECT_API_URL``) starts a throwaway server inside each
process, so a run paused in one process could never be resumed from another. Tests of the
Prefect adapter therefore run one real server and point every process at it::

    with PrefectServer() as prefect:
        env = prefect.env()  # PREFECT_API_URL, PREFECT_HOME, telemetry off
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from awaithumans.testing._process import stop_process
from awaithumans.testing.server import free_port


class PrefectServer:
    """``prefect server start`` (SQLite, no UI) in a subprocess, stopped and deleted after."""

    def __init__(self, *, port: int | None = None, startup_timeout: float = 90.0) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="awaithumans-prefect-")
        self.home = Path(self._tmp.name)
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.home / "server.log"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def env(self) -> dict[str, str]:
        """Settings for any process that should use this server (merged over os.environ)."""
        return {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.home),
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            # Served deployments look for scheduled runs this often (default 10 s).
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        }

    def start(self) -> PrefectServer:
        log = self.log_path.open("ab")
        env = {**os.environ, **self.env()}
        env.pop("PREFECT_API_URL")  # the server itself has no API to call
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-ui",
                "--analytics-off",
            ],
            env=env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with {self.proc.returncode}:\n{self.logs()}"
                )
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(
            f"prefect server not ready after {self.startup_timeout}s:\n{self.logs()}"
        )

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc)
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
