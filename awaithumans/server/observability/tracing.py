"""Optional OpenTelemetry traces: requests (FastAPI), queries (SQLAlchemy), calls out (httpx).

On when the ``otel`` extra is installed and ``AWAITHUMANS_OTEL=true`` or
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; spans go over OTLP/HTTP to that endpoint (the
exporter reads the other standard ``OTEL_*`` variables itself, ``OTEL_SERVICE_NAME``
included). Asked for without the extra, the server says so once and runs untraced.

The tracer provider is this app's own, handed to each instrumentation rather than made
the process-wide default, so apps built one after another in one process (the tests) do
not fight over it. The SQLAlchemy and httpx instrumentations patch their library for the
whole process: :meth:`Tracing.close` takes the patches off again.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine

    from awaithumans.server.settings import Settings

log = logging.getLogger("awaithumans.server.tracing")

#: What the ``otel`` extra brings; all are needed.
MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.instrumentation.fastapi",
    "opentelemetry.instrumentation.sqlalchemy",
    "opentelemetry.instrumentation.httpx",
)
# Probes and scrapes every few seconds would drown the traces that matter.
EXCLUDED_URLS = "/api/health,/api/ready,/metrics"


def extra_installed() -> bool:
    """Whether every package of the ``otel`` extra can be imported."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in MODULES)
    except ModuleNotFoundError:  # a parent package is missing
        return False


class Tracing:
    """This app's tracer provider and the instrumentation it turned on."""

    def __init__(self, provider: Any, app: FastAPI) -> None:
        self.provider = provider
        self._app = app

    @classmethod
    def start(
        cls,
        settings: Settings,
        app: FastAPI,
        engine: AsyncEngine,
        *,
        exporter: Any = None,
    ) -> Tracing | None:
        """Instrument ``app``, ``engine`` and httpx if tracing is asked for and possible.

        Args:
            exporter: Where spans go (an OpenTelemetry ``SpanExporter``), each as it ends;
                default: the OTLP/HTTP exporter, in batches. Passing one turns tracing on.

        Returns:
            None when tracing is off (not asked for, or the extra is missing).
        """
        if exporter is None and not settings.tracing:
            return None
        if not extra_installed():
            log.warning(
                "OpenTelemetry tracing is asked for (AWAITHUMANS_OTEL or"
                " OTEL_EXPORTER_OTLP_ENDPOINT) but the otel extra is not installed:"
                " pip install 'awaithumans[server,otel]'. Running without traces."
            )
            return None
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        # From OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES; "awaithumans" when they name none.
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "awaithumans"}))
        provider = TracerProvider(resource=resource)
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS
        )
        SQLAlchemyInstrumentor().instrument(
            engine=engine.sync_engine,
            tracer_provider=provider,
            # Its declared range stops below SQLAlchemy 2.1, which it works with: it hooks
            # the engine's public cursor events (tests/server/test_observability.py).
            skip_dep_check=True,
        )
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        return cls(provider, app)

    def close(self) -> None:
        """Send the spans still buffered and take the instrumentation off."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        HTTPXClientInstrumentor().uninstrument()
        SQLAlchemyInstrumentor().uninstrument()
        FastAPIInstrumentor.uninstrument_app(self._app)
        self.provider.shutdown()


def _otlp_exporter() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the traces-specific variable,
    # which wins over it, as the standard says) from the environment itself.
    return OTLPSpanExporter()
