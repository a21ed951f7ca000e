"""Fixtures for the LangGraph adapter tests: a real server, checkpointers, a live resumer."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from awaithumans.adapters.langgraph import relay_app
from awaithumans.adapters.langgraph.relay import CompiledGraph
from awaithumans.server.security import KeyRing
from awaithumans.server.settings import Settings
from awaithumans.server.webhook_secret import webhook_secret
from awaithumans.testing import ServerProcess


@pytest.fixture(scope="module")
def aw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # One server per module: starting one costs about a second, and tests keep apart by
    # using their own thread ids.
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw")) as proc:
        yield proc


@pytest.fixture(autouse=True)
def _server_env(aw_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWAITHUMANS_URL", aw_server.url)
    monkeypatch.setenv("AWAITHUMANS_API_KEY", aw_server.admin_token)
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")


@pytest.fixture
def secret(aw_server: ServerProcess) -> str:
    key = aw_server.payload_key
    return webhook_secret(Settings(payload_key=key), KeyRing.from_text(key))


@pytest.fixture(params=["sqlite", "postgres"])
async def checkpointer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """A persistent LangGraph checkpointer, on a SQLite file and on a real PostgreSQL."""
    if request.param == "sqlite":
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "graph.db")) as saver:
            yield saver
        return
    url: str = request.getfixturevalue("postgres_url")
    async with AsyncPostgresSaver.from_conn_string(url.replace("+asyncpg", "")) as pg:
        await pg.setup()
        yield pg


@pytest.fixture
async def sqlite_checkpointer(tmp_path: Path) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "graph.db")) as saver:
        yield saver


@dataclass
class Call:
    status: int
    reply: dict[str, Any]
    body: bytes
    headers: dict[str, str]


@dataclass
class LiveResumer:
    """``relay_app`` served by uvicorn on the test's own event loop.

    Same loop as the checkpointer's connection (aiosqlite and psycopg connections belong to
    one loop). Every answered request lands in ``calls``, so tests await it, not sleep.
    """

    url: str
    calls: asyncio.Queue[Call] = field(default_factory=asyncio.Queue)

    async def next(self, timeout: float = 30.0) -> Call:
        return await asyncio.wait_for(self.calls.get(), timeout)

    async def replay(self, call: Call) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(self.url, content=call.body, headers=call.headers)


@asynccontextmanager
async def serve_resumer(graph: CompiledGraph, secret: str) -> AsyncIterator[LiveResumer]:
    """Run the resumer for ``graph`` until the block ends."""
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say so, and with Nagle on, a reply written as headers then body waits ~40 ms
    # for the peer's delayed ACK on a kept-alive connection.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Bound and listening before the server task starts: the server's first webhook waits
    # in the backlog instead of being refused, so there is no readiness to wait for.
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    live = LiveResumer(url=f"http://127.0.0.1:{port}/hook")
    inner = relay_app(graph, secret)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        chunks: list[bytes] = []
        status: list[int] = []

        async def recv() -> Any:
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        async def snd(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)
            if message["type"] == "http.response.body":
                headers = {k.decode(): v.decode() for k, v in scope["headers"]}
                headers.pop("content-length", None)
                headers.pop("host", None)
                reply = json.loads(message["body"])
                live.calls.put_nowait(Call(status[0], reply, b"".join(chunks), headers))

        await inner(scope, recv, snd)

    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield live
    finally:
        server.should_exit = True
        await task
        sock.close()
