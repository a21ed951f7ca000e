"""``create_app(settings)``: the FastAPI application and the services it runs."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from awaithumans.core._codes import ErrorCode
from awaithumans.server.api import (
    admin,
    auth,
    email_identities,
    health,
    metrics,
    receipts,
    stats,
    tasks,
)
from awaithumans.server.api.errors import error_response, install_error_handlers
from awaithumans.server.api.json_guard import reject_unstorable
from awaithumans.server.api.long_poll import LongPollShortcut
from awaithumans.server.bootstrap import issue_setup_token
from awaithumans.server.context import ServerContext
from awaithumans.server.dashboard import mount_dashboard
from awaithumans.server.dashboard.render import not_found_page
from awaithumans.server.db.engine import migrate
from awaithumans.server.engines import engine_handlers
from awaithumans.server.notify import mount_inbound, notify_channels
from awaithumans.server.observability.logs import RequestContext
from awaithumans.server.observability.tracing import Tracing
from awaithumans.server.services.delivery import Handler, HandlerRegistry, Retries, Starts
from awaithumans.server.services.outbox import OutboxDispatcher
from awaithumans.server.services.replicas import ReplicaListener
from awaithumans.server.services.scheduler import TimeoutScheduler
from awaithumans.server.settings import Settings
from awaithumans.server.verifiers import VerificationRunner
from awaithumans.server.version import __version__

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
            413,
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The request body is over the {self.limit}-byte limit.",
        )
        await response(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a body without Content-Length outgrows the limit.

    An ``HTTPException`` on purpose: FastAPI turns any other exception raised while it reads
    the body into a generic 400, whereas this one reaches the 413 handler.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is over the {limit}-byte limit.")


def create_app(
    settings: Settings, *, channels: Sequence[Handler] = (), span_exporter: Any = None
) -> FastAPI:
    """Build the server. Nothing connects or starts until the ASGI lifespan runs.

    Args:
        settings: The configuration (see :class:`Settings`).
        channels: Extra delivery handlers, e.g. a notification channel; each handles the
            outbox jobs whose kind or notify-route prefix equals its ``name``. One that is an
            :class:`~awaithumans.server.notify.InboundChannel` gets its routes mounted under
            ``/api/channels/<name>/``.
        span_exporter: An OpenTelemetry ``SpanExporter`` to trace into (tests); without
            it, traces go over OTLP when asked for (``AWAITHUMANS_OTEL``,
            ``OTEL_EXPORTER_OTLP_ENDPOINT``) and the ``otel`` extra is installed.

    Raises:
        ValueError: The payload key is missing or malformed.
        RuntimeError: A workflow engine is configured without its extra installed.
    """
    registry = HandlerRegistry()
    ctx = ServerContext.build(settings, registry)
    for handler in (
        *engine_handlers(settings, ctx.keyring),
        *notify_channels(ctx),
        *channels,
    ):
        registry.register(handler, handler.policy() if isinstance(handler, Retries) else None)
    verifications = VerificationRunner(ctx)
    registry.register(verifications, verifications.policy())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(ctx.engine)
        ctx.writer.start()
        scheduler = TimeoutScheduler(ctx)
        outbox = OutboxDispatcher(ctx)
        ctx.wake.connect(outbox=outbox.kick, deadline=scheduler.kick)
        scheduler.start()
        outbox.start()
        for handler in registry:
            if isinstance(handler, Starts):
                await handler.start()
        listener = None
        if not settings.is_sqlite:
            listener = ReplicaListener(settings.database_url, ctx.hub)
            listener.start()
        app.state.setup_token = await issue_setup_token(ctx.engine, ctx.sealer)
        ctx.metrics.start()
        try:
            yield
        finally:
            await ctx.metrics.stop()
            if listener is not None:
                await listener.stop()
            await scheduler.stop()
            await outbox.stop()
            ctx.wake.disconnect()
            await ctx.writer.stop()
            await registry.aclose()
            ctx.schemas.close()
            await ctx.engine.dispose()
            if tracing is not None:
                tracing.close()

    app = FastAPI(
        **_no_native_telemetry(),
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
    for router in (
        tasks.router,
        auth.router,
        admin.router,
        email_identities.router,
        health.router,
        metrics.router,
        receipts.router,
        stats.router,
    ):
        app.include_router(router)
    mount_inbound(app, registry)
    mount_dashboard(app)
    # Innermost: well-formed long-polls skip the framework (api/long_poll.py says why).
    app.add_middleware(LongPollShortcut, ctx=ctx)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.log_format == "json":
        # Outside the body limit, so a refused body's lines carry the request id too.
        app.add_middleware(RequestContext)
    tracing = Tracing.start(settings, app, ctx.engine, exporter=span_exporter)
    return app


def _no_native_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry off, where FastAPI has it (0.150 and later).

    It looks up the global providers on every request (an environment read each time: 4 %
    of the server's CPU in a burst of answers), and the ``otel`` extra already traces the
    app through OpenTelemetry's FastAPI instrumentation (``observability/tracing.py``), so
    spans would come twice.
    """
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
