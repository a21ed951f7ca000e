"""``create_app(settings)``: the FastAPI application and the services it runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from awaithumans.server.api import admin, auth, health, tasks
from awaithumans.server.api.deps import reject_unstorable
from awaithumans.server.api.errors import error_response, install_error_handlers
from awaithumans.server.bootstrap import issue_setup_token
from awaithumans.server.channels.base import ChannelRegistry, Handler
from awaithumans.server.channels.prefect import PrefectResumer, prefect_available
from awaithumans.server.channels.temporal import TemporalSignaler, temporal_available
from awaithumans.server.channels.webhook import WebhookSender
from awaithumans.server.context import ServerContext
from awaithumans.server.dashboard import mount_dashboard
from awaithumans.server.dashboard.render import not_found_page
from awaithumans.server.db.engine import migrate
from awaithumans.server.security import KeyRing
from awaithumans.server.services.outbox import OutboxDispatcher
from awaithumans.server.services.replicas import ReplicaListener
from awaithumans.server.services.scheduler import TimeoutScheduler
from awaithumans.server.settings import Settings
from awaithumans.server.version import __version__
from awaithumans.server.webhook_secret import webhook_secret

log = logging.getLogger("awaithumans.server")


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, before anything parses them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(scope, receive, send)
                    return
        seen = 0

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(self.limit)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "PAYLOAD_TOO_LARGE", f"The request body is over the {self.limit}-byte limit."
        )
        await response(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a body without Content-Length outgrows the limit.

    An ``HTTPException`` on purpose: FastAPI turns any other exception raised while it reads
    the body into a generic 400, whereas this one reaches the 413 handler.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is over the {limit}-byte limit.")


def delivery_handlers(settings: Settings, keyring: KeyRing) -> list[Handler]:
    """The handlers this configuration asks for: webhooks always, engines when addressed.

    Raises:
        RuntimeError: An engine is addressed but its extra is not installed.
    """
    handlers: list[Handler] = [
        WebhookSender(webhook_secret(settings, keyring), timeout=settings.webhook_timeout_seconds)
    ]
    if settings.temporal_address:
        if not temporal_available():
            raise RuntimeError(
                "AWAITHUMANS_TEMPORAL_ADDRESS is set but temporalio is not installed: "
                'pip install "awaithumans[server,temporal]"'
            )
        handlers.append(TemporalSignaler(settings.temporal_address, settings.temporal_namespace))
    if settings.prefect_api_url:
        if not prefect_available():
            raise RuntimeError(
                "AWAITHUMANS_PREFECT_API_URL is set but prefect is not installed: "
                'pip install "awaithumans[server,prefect]"'
            )
        key = settings.prefect_api_key
        handlers.append(
            PrefectResumer(settings.prefect_api_url, key.get_secret_value() if key else None)
        )
    return handlers


def create_app(settings: Settings, *, channels: Sequence[Handler] = ()) -> FastAPI:
    """Build the server. Nothing connects or starts until the ASGI lifespan runs.

    Args:
        settings: The configuration (see :class:`Settings`).
        channels: Extra delivery handlers, e.g. a notification channel; each handles the
            outbox jobs whose kind or notify-route prefix equals its ``name``.

    Raises:
        ValueError: The payload key is missing or malformed.
        RuntimeError: A workflow engine is configured without its extra installed.
    """
    registry = ChannelRegistry()
    ctx = ServerContext.build(settings, registry)
    for handler in (*delivery_handlers(settings, ctx.keyring), *channels):
        registry.register(handler)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(ctx.engine)
        ctx.writer.start()
        scheduler = TimeoutScheduler(ctx)
        outbox = OutboxDispatcher(ctx)
        ctx.wake.connect(outbox=outbox.kick, deadline=scheduler.kick)
        scheduler.start()
        outbox.start()
        listener = None
        if not settings.is_sqlite:
            listener = ReplicaListener(settings.database_url, ctx.hub)
            listener.start()
        app.state.setup_token = await issue_setup_token(ctx.engine)
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            await scheduler.stop()
            await outbox.stop()
            ctx.wake.disconnect()
            await ctx.writer.stop()
            await registry.aclose()
            await ctx.engine.dispose()

    app = FastAPI(
        title="awaithumans",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        # Before any route's own dependencies: text and numbers no backend can store are
        # refused as a 4xx here rather than failing in the database as a 500.
        dependencies=[Depends(reject_unstorable)],
    )
    app.state.ctx = ctx
    app.state.setup_token = None
    install_error_handlers(app, not_found_page=not_found_page)
    for router in (tasks.router, auth.router, admin.router, health.router):
        app.include_router(router)
    mount_dashboard(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
