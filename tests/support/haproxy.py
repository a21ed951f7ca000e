"""HAProxy in front of several awaithumans servers, as users run replicas: a real load balancer.

Round-robin over the backends, each checked on ``/api/health``; long-polls pass through (the
server timeout is longer than a poll); a backend that dies is taken out by its health check
and by a failed connect (``redispatch`` retries a request on another one). The Debian
package comes from ``scripts/system-deps.sh``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HAProxy:
    """``haproxy`` on 127.0.0.1, balancing over ``backends`` (base URLs ``http://127.0.0.1:N``)."""

    backends: list[str]
    port: int = 0
    #: Close each backend connection after its response (``option http-server-close``).
    #: False keeps them alive, HAProxy's default: bench/replicas.py measures that, since it
    #: costs the replicas less CPU per request.
    server_close: bool = True
    _proc: subprocess.Popen[bytes] | None = None
    _dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="haproxy-")))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The running haproxy's process id (bench/replicas.py reads its CPU)."""
        assert self._proc is not None, "haproxy is not started"
        return self._proc.pid

    def config(self) -> str:
        servers = "\n".join(
            f"    server s{n} {url.removeprefix('http://')} check inter 300ms fall 2 rise 1"
            for n, url in enumerate(self.backends)
        )
        return f"""global
    maxconn 8000

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch
{"    option http-server-close" if self.server_close else ""}

frontend awaithumans
    bind 127.0.0.1:{self.port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /api/health
{servers}
"""

    def start(self, timeout: float = 15.0) -> HAProxy:
        self.port = self.port or _free_port()
        path = self._dir / "haproxy.cfg"
        path.write_text(self.config())
        log = (self._dir / "haproxy.log").open("wb")
        self._proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"haproxy exited {self._proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"haproxy not answering after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        try:
            return (self._dir / "haproxy.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> HAProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
