"""Run the server under uvicorn and announce it once it really listens."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import LOGGING_CONFIG

from awaithumans.server.app import create_app
from awaithumans.server.observability.logs import printed_as_logs, uvicorn_log_config
from awaithumans.server.security.client_address import Network, client_address
from awaithumans.server.settings import Settings


def port_free(host: str, port: int) -> bool:
    """Whether uvicorn could bind ``host:port`` now: probed the way uvicorn binds.

    Same address family rule as uvicorn (``--host ::`` is IPv6), and SO_REUSEADDR as asyncio's
    ``create_server`` sets it: without it, the connections a just-stopped server left in
    TIME_WAIT made a restart move to the next port (or refuse an explicit ``--port``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name != "nt":  # on Windows the option would let us share a port in use
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


class ClientInScope:
    """Puts the client's address (as ``web.client_ip`` computes it) in the ASGI scope, so
    uvicorn's access log names the client rather than the proxy. Only wrapped around the
    app when that log is on and proxies are trusted. The app computes the address again
    from the rewritten scope and finds the same one: the rewritten peer is either
    untrusted (taken as is) or, when every hop was trusted, the left-most hop, which the
    walk over the same header ends on again."""

    def __init__(self, app: ASGIApp, proxies: Sequence[Network]) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            forwarded = [
                v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"
            ]
            address = client_address(client[0] if client else None, forwarded, self.proxies)
            scope["client"] = (address, client[1] if client else 0)
        await self.app(scope, receive, send)


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so the ``finally`` clean-up below still runs."""


def _raise_terminated(_sig: int, _frame: FrameType | None) -> None:
    raise _Terminated


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (the server extra brings it on Linux), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def settle_heap() -> None:
    # Everything alive after start-up (modules, app, routes) lives as long as the process.
    # Freezing it takes it out of every later full collection, which otherwise walked it
    # about once a second under load and stalled the event loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def uvicorn_options(settings: Settings, log_level: str, access_log: bool) -> dict[str, Any]:
    """What uvicorn is given, with one process (:func:`serve`) or several (``workers.py``)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        # AWAITHUMANS_LOG_FORMAT=json: JSON lines from uvicorn's loggers and ours alike.
        "log_config": uvicorn_log_config(settings.log_format, log_level) or LOGGING_CONFIG,
        "access_log": access_log,
        "lifespan": "on",
        # Long-polls hold connections for up to 30 s; keep-alive must outlast the gaps.
        "timeout_keep_alive": 65,
        "server_header": False,
        # uvicorn's own proxy handling is on by default and trusts X-Forwarded-For from
        # 127.0.0.1 (or $FORWARDED_ALLOW_IPS), rewriting the client before the app sees it:
        # any local process could then pick the address every rate limit counts. The app
        # reads the header itself, from AWAITHUMANS_TRUSTED_PROXIES only (web.client_ip),
        # so the socket peer must reach it untouched. (Links use public_url, never the
        # request's scheme, so X-Forwarded-Proto is not needed either.)
        "proxy_headers": False,
    }


def serve(
    settings: Settings,
    *,
    on_ready: Callable[[FastAPI], None],
    on_exit: Callable[[], None] | None = None,
    log_level: str = "warning",
    access_log: bool = False,
) -> int:
    app = create_app(settings)
    logged: ASGIApp = app
    if access_log and settings.trusted_proxies:
        logged = ClientInScope(app, settings.trusted_proxies)
    config = uvicorn.Config(logged, **uvicorn_options(settings, log_level, access_log))
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
            settle_heap()
            with printed_as_logs(settings.log_format):
                on_ready(app)
        await task

    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal under the
    # handler that was there before it. For SIGTERM that is the default action, which kills the
    # process on the spot: ``on_exit`` (removing ~/.awaithumans-dev.json) never ran. A Python
    # handler makes the re-raised SIGTERM an exception, like SIGINT's KeyboardInterrupt.
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(main())
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if on_exit is not None:
            on_exit()
    return 0 if server.started else 1
