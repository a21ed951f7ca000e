"""A real awaithumans server process for tests: started on a free port, stopped after.

Used by our own end-to-end tests and available to users who test their agents against a
real server::

    with ServerProcess(database_url=...) as server:
        await_human_sync(..., server_url=server.url, api_key=server.admin_token)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from awaithumans.testing._process import stop_process


def _banner_printed(logs: str) -> bool:
    """Whether the start-up banner's last line is out: the setup link's note, or the plain
    dashboard address when no setup is needed (as text, or inside JSON log lines)."""
    return "one-shot setup link" in logs or "Open the dashboard at: http" in logs


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``awaithumans serve`` in a subprocess, with its own key, token and database."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        port: int | None = None,
        payload_key: str | None = None,
        admin_token: str | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
        workdir: Path | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="awaithumans-server-")
        self.workdir = workdir or Path(self._tmp.name)
        self.database_url = database_url or f"sqlite:///{self.workdir / 'server.db'}"
        self.port = port or free_port()
        self.payload_key = payload_key or secrets.token_hex(32)
        self.admin_token = admin_token or "test-admin-" + secrets.token_hex(16)
        self.extra_env = env or {}
        #: More ``awaithumans serve`` flags, e.g. ``["--access-log", "--log-level", "info"]``.
        self.args = list(args)
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"server-{self.port}.log"
        self.setup_token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AWAITHUMANS_DATABASE_URL=self.database_url,
            AWAITHUMANS_PAYLOAD_KEY=self.payload_key,
            AWAITHUMANS_ADMIN_API_TOKEN=self.admin_token,
            AWAITHUMANS_PUBLIC_URL=self.url,
        )
        # Like `awaithumans dev`: the relays and receivers of a test run on this machine.
        env.setdefault("AWAITHUMANS_ALLOW_PRIVATE_CALLBACKS", "loopback")
        env.update(self.extra_env)
        return env

    def start(self) -> ServerProcess:
        if self.proc is not None and self.proc.poll() is None:
            return self
        # The log carries the one-shot setup link: readable by its owner only.
        log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [
                sys.executable,
                "-m",
                "awaithumans._cli_entry",
                "serve",
                "--port",
                str(self.port),
                *self.args,
            ],
            env=self.env(),
            cwd=self.workdir,
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
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                healthy = httpx.get(f"{self.url}/api/health", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                healthy = False
            # The server answers as soon as it listens and prints its banner (the setup
            # link) a moment later: wait for the banner's last line, printed either way.
            if healthy and _banner_printed(self.logs()):
                self._read_setup_token()
                return
            time.sleep(0.05)
        raise TimeoutError(f"server not ready after {self.startup_timeout}s:\n{self.logs()}")

    def _read_setup_token(self) -> None:
        for line in self.logs().splitlines():
            if line.startswith("{"):  # AWAITHUMANS_LOG_FORMAT=json: the banner is logged
                with contextlib.suppress(ValueError, AttributeError):
                    line = str(json.loads(line).get("message", ""))
            if "/setup?token=" in line:
                self.setup_token = line.split("/setup?token=", 1)[1].strip()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (graceful) or SIGKILL (a crash)."""
        if self.proc is None:
            return
        stop_process(self.proc, sig=signal.SIGKILL if kill else signal.SIGTERM, timeout=15)
        self.proc = None

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
