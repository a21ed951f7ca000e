"""``awaithumans serve --workers N``: N server processes answering on one port.

uvicorn's supervisor binds the port once and starts N worker processes that accept from
it; it restarts a worker that dies and stops them all on SIGINT/SIGTERM. Each worker is a
whole server, as a replica on another machine would be: its own connection pool, writer,
outbox dispatcher, timeout scheduler and LISTEN connection. Nothing is shared in memory;
PostgreSQL is what they share, which is why several workers need it:

* a long-poll held by one worker returns when another records the answer, through the
  ``NOTIFY`` every change sends (``services/replicas.py``); SQLite has no such channel, so
  the waiter would only see the answer at its next re-poll, up to 25 s later;
* outbox jobs are claimed by a compare-and-set on the row's lease (``ClaimDue`` updates only
  rows still due, so of two workers that read the same row one claims it, the other gets no
  row), and a timeout is a compare-and-set on the task's status and version: each
  delivery and each timeout happens once across workers, as across replicas.

Before it starts the workers, the parent migrates the database (the workers then find it
current) and reads the setup token, which every worker shares, to print the one banner.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from awaithumans.server.app import create_app
from awaithumans.server.bootstrap import issue_setup_token
from awaithumans.server.cli.runner import ClientInScope, settle_heap, uvicorn_options
from awaithumans.server.db.engine import make_engine, migrate
from awaithumans.server.observability.logs import printed_as_logs
from awaithumans.server.observability.metrics import shared_across_workers
from awaithumans.server.security import KeyRing, Sealer
from awaithumans.server.settings import Settings

#: The factory each worker imports (uvicorn needs an import string to start workers).
WORKER_APP = f"{__name__}:worker_app"


def worker_app() -> ASGIApp:
    """The application of one worker, from the ``AWAITHUMANS_*`` environment.

    The parent put the command line's ``--host`` and ``--port`` there; everything else a
    worker reads exactly as the parent did.
    """
    settings = Settings()
    app = create_app(settings)
    _release_polls_on_exit(app.state.ctx.hub.release_all)
    settle_heap()
    # Unlike one process, a worker cannot tell whether the access log is on; the rewrite
    # is cheap and the app finds the same client address with it or without it.
    if settings.trusted_proxies:
        return ClientInScope(app, settings.trusted_proxies)
    return app


def _release_polls_on_exit(release_all: Callable[[], None]) -> None:
    """Answer this worker's long-polls as soon as it is told to stop.

    A graceful stop waits for open requests, and a long-poll stays open up to 30 s; their
    clients would rather re-poll another worker (or this server once restarted) at once.
    With one process our ``uvicorn.Server`` subclass does this in ``handle_exit``; a worker
    runs uvicorn's own server, so its signal handlers (installed before the factory is
    called) are wrapped instead.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not called by uvicorn's server: nothing to wrap
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(
            signum: int,
            frame: FrameType | None,
            previous: Callable[[int, FrameType | None], Any] = previous,
        ) -> None:
            loop.call_soon_threadsafe(release_all)
            previous(signum, frame)

        signal.signal(sig, handler)


async def _prepare(settings: Settings) -> str | None:
    """Migrate the database and return the setup token every worker will print."""
    assert settings.payload_key is not None  # serve refuses to start without it
    sealer = Sealer(
        KeyRing.from_text(settings.payload_key.get_secret_value(), settings.previous_payload_keys())
    )
    engine = make_engine(settings)
    try:
        await migrate(engine)
        return await issue_setup_token(engine, sealer)
    finally:
        await engine.dispose()


def serve_workers(
    settings: Settings,
    workers: int,
    *,
    on_ready: Callable[[str | None], None],
    log_level: str = "warning",
    access_log: bool = False,
) -> int:
    """Run ``workers`` server processes on ``settings``' port until SIGINT/SIGTERM.

    Args:
        settings: The configuration; the workers read the same environment.
        workers: How many processes (2 or more).
        on_ready: Called with the setup token (or None) once the port answers.
        log_level: uvicorn's and the server's log level.
        access_log: Log every request.

    Returns:
        0 after a clean stop; 1 if no worker ever answered.
    """
    token = asyncio.run(_prepare(settings))
    # The workers are new interpreters that read the environment: what the command line
    # chose must be there. Set in this process only, which ends with the server.
    os.environ["AWAITHUMANS_HOST"] = settings.host
    os.environ["AWAITHUMANS_PORT"] = str(settings.port)
    ready = threading.Event()
    stopped = threading.Event()

    def announce() -> None:
        if _wait_until_answering(settings, stopped):
            ready.set()
            with printed_as_logs(settings.log_format):
                on_ready(token)

    threading.Thread(target=announce, name="awaithumans-ready", daemon=True).start()
    try:
        # One folder for the workers' metric files: a scrape of any worker counts them all.
        with shared_across_workers():
            uvicorn.run(
                WORKER_APP,
                factory=True,
                workers=workers,
                **uvicorn_options(settings, log_level, access_log),
            )
    finally:
        stopped.set()
    return 0 if ready.is_set() else 1


def _wait_until_answering(settings: Settings, stopped: threading.Event) -> bool:
    """Whether a worker answered ``/api/health`` before the server stopped.

    uvicorn's supervisor has no "started" hook, and the port accepts connections as soon
    as it is bound, before any worker serves; a request is what tells.
    """
    # Listening on every address: ask over loopback.
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104
    host = wildcard.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{settings.port}/api/health"
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        while not stopped.is_set():
            try:
                if client.get(url).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            stopped.wait(0.1)
    return False
