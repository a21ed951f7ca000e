"""Rate limits in a real `awaithumans serve` process: uvicorn hands the socket peer to the
app untouched (its own X-Forwarded-For handling trusts 127.0.0.1 by default, and is off),
AWAITHUMANS_TRUSTED_PROXIES makes the forwarded address the bucket, and the access log
names the client, not the proxy.

Clients connect from 127.0.0.1 and from 127.0.0.2 (a second loopback address, bound as the
socket's source), so the server sees two real peers.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from awaithumans.testing import ServerProcess
from awaithumans.testing._process import stop_process
from tests._waiting import until

LIMIT = {"AWAITHUMANS_HANDOFF_LIMIT_PER_ADDRESS": "3/600"}


def from_address(server: ServerProcess, local: str, forwarded: str | None) -> httpx.AsyncClient:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=local),
        base_url=server.url,
        headers=headers,
        timeout=10,
    )


async def handoff(server: ServerProcess, local: str, forwarded: str | None = None) -> int:
    """Open a made-up handoff link from ``local``: 400 when counted, 429 when refused."""
    async with from_address(server, local, forwarded) as c:
        resp = await c.get("/handoff", params={"t": "not-a-link"})
    if resp.status_code == 429:
        assert 0 < int(resp.headers["retry-after"]) <= 200
    return resp.status_code


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(workdir=tmp_path, env=LIMIT) as server:
        yield server


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {**LIMIT, "AWAITHUMANS_TRUSTED_PROXIES": "127.0.0.1"}
    with ServerProcess(workdir=tmp_path, env=env) as server:
        yield server


async def test_without_trusted_proxies_the_peer_is_the_bucket(plain: ServerProcess) -> None:
    # Each request names another client; uvicorn's default would have believed them.
    codes = [await handoff(plain, "127.0.0.1", f"203.0.113.{n}") for n in range(4)]
    assert codes == [400, 400, 400, 429]
    assert await handoff(plain, "127.0.0.1") == 429
    assert await handoff(plain, "127.0.0.2", "203.0.113.1") == 400


async def test_behind_a_trusted_proxy_the_forwarded_client_is_the_bucket(
    proxied: ServerProcess,
) -> None:
    codes = [await handoff(proxied, "127.0.0.1", "203.0.113.7") for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    # A client that writes its own entries first still lands in its own bucket.
    assert await handoff(proxied, "127.0.0.1", "198.51.100.1, 203.0.113.7") == 429
    assert await handoff(proxied, "127.0.0.1", "203.0.113.8") == 400
    # 127.0.0.2 is no trusted proxy: its header is ignored, and it is counted as itself.
    untrusted = [await handoff(proxied, "127.0.0.2", "203.0.113.8") for _ in range(4)]
    assert untrusted == [400, 400, 400, 429]
    assert await handoff(proxied, "127.0.0.1", "203.0.113.8") == 400


async def test_the_access_log_names_the_forwarded_client(tmp_path: Path) -> None:
    holder = ServerProcess(workdir=tmp_path, env={"AWAITHUMANS_TRUSTED_PROXIES": "127.0.0.1"})
    log_path = tmp_path / "access.log"
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "awaithumans._cli_entry", "serve"]
        flags = ["--port", str(holder.port), "--access-log", "--log-level", "info"]
        proc = subprocess.Popen(
            [*command, *flags],
            env=holder.env(),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        async def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                async with httpx.AsyncClient(timeout=1) as c:
                    return (await c.get(f"{holder.url}/api/health")).status_code == 200
            except httpx.HTTPError:
                return False

        await until(healthy, why=log_path.read_text)
        assert await handoff(holder, "127.0.0.1", "198.51.100.1, 203.0.113.7") == 400

        async def logged() -> bool:
            return "GET /handoff" in log_path.read_text()

        await until(logged, timeout=10, why=log_path.read_text)
        line = next(ln for ln in log_path.read_text().splitlines() if "GET /handoff" in ln)
        assert "203.0.113.7" in line
        assert "198.51.100.1" not in line
        assert "127.0.0.1" not in line
    finally:
        await asyncio.to_thread(stop_process, proc, timeout=15)
        holder.close()
