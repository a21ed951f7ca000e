"""Browser tests of the dashboard: a system Chromium driven by Playwright, and a dev server.

Playwright's own browser download is not used: the tests drive the distribution's
``chromium`` (Debian: ``apt-get install chromium``) through ``executable_path``::

    from playwright.sync_api import sync_playwright

    with DevServer(workdir, home) as server, sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page()
        page.goto(server.setup_url)
        screenshot(page, Path("test-artifacts/screenshots"), "setup")

Use Playwright's *sync* API in tests. While a sync Playwright is started, the thread counts
as running its event loop, so no asyncio test can run in the same thread until it is
stopped. Playwright is imported here only for type checking.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from awaithumans.testing import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

# No sandbox: the tests run as root in containers, where Chromium's sandbox cannot start.
# The rest keeps the browser from talking to anything but the pages it is sent to.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

INSTALL_HINT = (
    "Install it with `bash scripts/system-deps.sh` (as root), or on Debian/Ubuntu: "
    "apt-get install -y --no-install-recommends chromium fonts-dejavu-core fonts-liberation"
)

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ChromiumNotFoundError(RuntimeError):
    """No ``chromium`` executable on PATH."""


def find_chromium() -> str:
    """The system Chromium's path; raises :class:`ChromiumNotFoundError` with a fix if absent."""
    path = shutil.which("chromium")
    if path is None:
        raise ChromiumNotFoundError(f"No `chromium` on PATH. {INSTALL_HINT}")
    return path


def launch_chromium(playwright: Playwright, **kwargs: Any) -> Browser:
    """Start the system Chromium headless, with a fresh temporary profile (Playwright's)."""
    args = [*CHROMIUM_ARGS, *kwargs.pop("args", ())]
    return playwright.chromium.launch(
        executable_path=find_chromium(), headless=True, args=args, **kwargs
    )


def is_local_url(url: str) -> bool:
    """Whether a request URL stays on this machine (``data:``, ``blob:``... count as local)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True
    return parts.hostname in LOCAL_HOSTS


def screenshot(page: Page, directory: Path, name: str) -> Path:
    """Save a full-page PNG as ``<directory>/<name>-<viewport width>.png``; returns its path."""
    viewport = page.viewport_size
    width = viewport["width"] if viewport else "auto"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and children
    # inherit that; Python then never raises KeyboardInterrupt and SIGINT would not stop it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class DevServer:
    """``awaithumans dev`` in a subprocess, in ``workdir`` with ``HOME=home``, on a free port.

    Started as a user starts it, with none of the runner's ``AWAITHUMANS_*`` settings, so
    the database, key and admin token are created in ``workdir/.awaithumans`` and the
    discovery file in ``home``. Ready once the banner printed the one-shot setup link.
    """

    def __init__(
        self,
        workdir: Path,
        home: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.cwd = workdir
        self.home = home
        self.port = port or free_port()
        self.extra_env = env or {}
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_lines: list[str] = []
        self.stderr_path = workdir.parent / f"{workdir.name}-dev-{self.port}.stderr"
        self.url = ""
        self.setup_url = ""
        self.admin_token = ""
        self.returncode: int | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWAITHUMANS_")}
        env.update(HOME=str(self.home), PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
        env.update(self.extra_env)
        return env

    def start(self) -> DevServer:
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "awaithumans._cli_entry", "dev", "--port", str(self.port)]
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env(),
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
                errors="replace",
                preexec_fn=_default_sigint,
            )
        assert self.proc.stdout is not None
        # Read on a thread for the whole run: a full pipe would block the server's prints.
        self._reader = threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        try:
            self._wait_for_banner()
        except BaseException:
            self.stop()
            raise
        self.admin_token = (self.cwd / ".awaithumans" / "admin.token").read_text().strip()
        return self

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise TimeoutError(
                    f"awaithumans dev printed no setup link in {self.startup_timeout:.0f}s"
                    + self.describe()
                ) from None
            if line is None:
                assert self.proc is not None
                raise RuntimeError(
                    f"awaithumans dev exited ({self.proc.wait()}) before printing its setup"
                    " link" + self.describe()
                )
            self.stdout_lines.append(line)
            if line.startswith("✓ Server running at "):
                self.url = line.removeprefix("✓ Server running at ").strip()
            if "/setup?token=" in line:
                self.setup_url = line.strip()
                break
        if not self.url:
            self.url = f"http://localhost:{self.port}"

    def describe(self) -> str:
        """The output so far, for failure messages."""
        return (
            "\n--- stdout ---\n"
            + "\n".join(self.stdout_lines)
            + "\n--- stderr ---\n"
            + self.stderr()
        )

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGINT (Ctrl+C, a graceful stop), then SIGKILL if it has not ended in time."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.returncode = self.proc.returncode
        # The reader reaches the end of the pipe now that the process is gone; close it after.
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.proc.stdout is not None and not (self._reader and self._reader.is_alive()):
            with contextlib.suppress(OSError):
                self.proc.stdout.close()
        self.proc = None
        return self.returncode

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
