"""Run the server under uvicorn and announce it once it really listens."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from awaithumans.server.app import create_app
from awaithumans.server.settings import Settings


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def first_free_port(host: str, start: int, tries: int = 50) -> int:
    for port in range(start, start + tries):
        if port_free(host, port):
            return port
    raise SystemExit(f"No free port in {start}..{start + tries - 1} on {host}.")


def serve(
    settings: Settings,
    *,
    on_ready: Callable[[FastAPI], None],
    on_exit: Callable[[], None] | None = None,
    log_level: str = "warning",
    access_log: bool = False,
) -> int:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        # Long-polls hold connections for up to 30 s; keep-alive must outlast the gaps.
        timeout_keep_alive=65,
        server_header=False,
    )
    ctx = app.state.ctx

    class Server(uvicorn.Server):
        _loop: asyncio.AbstractEventLoop | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Long-polls would hold a graceful shutdown for up to 30 s; answer them now
            # (with the current, unchanged status) and their clients re-poll elsewhere.
            loop = self._loop
            if loop is not None:
                loop.call_soon_threadsafe(ctx.hub.release_all)
            super().handle_exit(sig, frame)

    server = Server(config)

    async def main() -> None:
        server._loop = asyncio.get_running_loop()
        task = asyncio.create_task(server.serve())
        # uvicorn exposes no "started" event, only the flag; a short poll at startup is fine.
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if server.started:
            on_ready(app)
        await task

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        if on_exit is not None:
            on_exit()
    return 0 if server.started else 1
