"""/api/ready, /metrics and traces, on the app in-process with a real database (both backends).

Metrics are read the way Prometheus reads them: the text of ``GET /metrics`` parsed with
prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Any

import httpx
import orjson
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from awaithumans.core._codes import ErrorCode
from awaithumans.server.api.health import schema_head
from awaithumans.server.app import create_app
from awaithumans.server.context import ServerContext
from awaithumans.server.db.engine import MIGRATIONS_DIR
from awaithumans.server.observability.logs import JsonFormatter
from awaithumans.testing import WebhookReceiver
from tests._app_fixtures import ADMIN_TOKEN, make_settings, running_app
from tests._waiting import until
from tests.support.metrics import Samples, parse, value

METRICS_TOKEN = "metrics-" + "m" * 24


def body(**extra: Any) -> dict[str, Any]:
    return {
        "task": "Approve?",
        "payload": {"amount": 5},
        "payload_schema": {"type": "object", "properties": {"amount": {"type": "integer"}}},
        "response_schema": {
            "type": "object",
            "properties": {"approved": {"type": "boolean"}},
            "required": ["approved"],
        },
        "timeout_seconds": 600,
        "idempotency_key": f"obs-{uuid.uuid4().hex}",
        **extra,
    }


async def scrape(client: httpx.AsyncClient, token: str = METRICS_TOKEN) -> Samples:
    got = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/plain")
    return parse(got.text)


def ctx_of(app: FastAPI) -> ServerContext:
    ctx: ServerContext = app.state.ctx
    return ctx


# -- /api/ready ---------------------------------------------------------------------------------


def _previous_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_revision(schema_head())
    assert head is not None
    assert isinstance(head.down_revision, str)
    return head.down_revision


async def test_ready_when_the_schema_is_current(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (app, client):
        got = await client.get("/api/ready", headers={"Authorization": ""})
        assert got.status_code == 200, got.text
        ready = got.json()
        assert ready["status"] == "ready"
        assert ready["database"] in ("sqlite", "postgresql")
        async with ctx_of(app).engine.connect() as conn:
            stored = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        assert ready["revision"] == stored


async def test_not_ready_on_a_schema_behind_the_code_but_still_alive(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (app, client):
        engine = ctx_of(app).engine
        async with engine.begin() as conn:
            head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            # As a database restored from an older backup under a running server would be.
            await conn.execute(
                text("UPDATE alembic_version SET version_num = :old"),
                {"old": _previous_revision()},
            )
        got = await client.get("/api/ready")
        assert got.status_code == 503, got.text
        assert got.json()["error"] == ErrorCode.SCHEMA_NOT_CURRENT
        assert _previous_revision() in got.json()["message"]
        assert head in got.json()["message"]
        # Liveness is another question: the process is fine, restarting it would not help.
        assert (await client.get("/api/health")).status_code == 200

        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )
        assert (await client.get("/api/ready")).status_code == 200


async def test_not_ready_while_shutting_down(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (app, client):
        # What SIGTERM does first (cli/runner.py): answer the long-polls, refuse new ones.
        ctx_of(app).hub.release_all()
        got = await client.get("/api/ready")
        assert got.status_code == 503
        assert got.json()["error"] == ErrorCode.SERVER_RESTARTING


# -- /metrics: who may read it ------------------------------------------------------------------


async def test_metrics_need_the_metrics_token_or_the_admin_token(database_url: str) -> None:
    settings = make_settings(database_url, metrics_token=METRICS_TOKEN)
    async with running_app(settings) as (_app, client):
        key = await client.post("/api/admin/agent-keys", json={"name": "scraper?"})
        assert key.status_code == 201, key.text
        refused = {
            "none": {"Authorization": ""},
            "wrong": {"Authorization": "Bearer " + "x" * 32},
            "agent key": {"Authorization": f"Bearer {key.json()['key']}"},
            "basic": {"Authorization": f"Basic {METRICS_TOKEN}"},
            "prefix": {"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"},
        }
        for why, headers in refused.items():
            got = await client.get("/metrics", headers=headers)
            assert got.status_code == 401, why
            assert got.json()["error"] == ErrorCode.UNAUTHORIZED, why
            assert got.headers["www-authenticate"] == "Bearer", why
            assert "awaithumans" not in got.text.replace("awaithumans_", ""), why
        for token in (METRICS_TOKEN, ADMIN_TOKEN):
            assert (
                await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            ).status_code == 200


async def test_without_tokens_metrics_answer_no_one(database_url: str) -> None:
    async with running_app(make_settings(database_url, admin_api_token=None)) as (_app, client):
        got = await client.get("/metrics", headers={"Authorization": "Bearer "})
        assert got.status_code == 401
        got = await client.get("/metrics", headers={"Authorization": "Bearer None"})
        assert got.status_code == 401


async def test_openmetrics_when_the_scraper_asks_for_it(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (_app, client):
        got = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("application/openmetrics-text")
        assert got.text.rstrip().endswith("# EOF")


# -- /metrics: what it says ---------------------------------------------------------------------


async def test_creates_answers_tasks_by_status_and_the_return_latency(database_url: str) -> None:
    settings = make_settings(database_url, metrics_token=METRICS_TOKEN)
    async with running_app(settings) as (_app, client):
        before = await scrape(client)
        assert value(before, "awaithumans_database_up") == 1
        assert value(before, "awaithumans_long_polls_open") == 0
        assert value(before, "awaithumans_answer_return_seconds_count") == 0

        first = (await client.post("/api/tasks", json=body())).json()
        second_body = body()
        second = (await client.post("/api/tasks", json=second_body)).json()
        replay = await client.post("/api/tasks", json=second_body)
        assert replay.headers["idempotent-replayed"] == "true"

        # A long-poll parks on the first task; the gauge sees it.
        poll = asyncio.create_task(
            client.get(f"/api/tasks/{first['id']}/poll", params={"timeout": 20})
        )

        async def parked() -> bool:
            return value(await scrape(client), "awaithumans_long_polls_open") == 1

        await until(parked, timeout=10)
        answered = await client.post(
            f"/api/tasks/{first['id']}/complete", json={"response": {"approved": True}}
        )
        assert answered.status_code == 200, answered.text
        returned = await asyncio.wait_for(poll, 10)
        assert returned.json()["status"] == "completed"

        after = await scrape(client)
        # Two creates; the replay is not one.
        assert value(after, "awaithumans_task_creates_total") == 2
        assert value(after, "awaithumans_answers_total", channel="api") == 1
        assert value(after, "awaithumans_long_polls_open") == 0
        count = value(after, "awaithumans_answer_return_seconds_count")
        assert count == 1
        latency = value(after, "awaithumans_answer_return_seconds_sum")
        assert 0 < latency < 5
        # A poll that arrives after the answer was not waiting: no observation.
        late = await client.get(f"/api/tasks/{first['id']}/poll", params={"timeout": 1})
        assert late.json()["status"] == "completed"
        # ...and a poll that times out on an open task is none either.
        quiet = await client.get(f"/api/tasks/{second['id']}/poll", params={"timeout": 1})
        assert quiet.json()["status"] == "created"

        async def counted() -> Samples | None:
            # The database numbers are cached for a moment; they catch up within seconds.
            now = await scrape(client)
            done = value(now, "awaithumans_tasks", status="completed")
            return now if done == 1 else None

        final = await until(counted, timeout=10)
        assert value(final, "awaithumans_tasks", status="created") == 1
        assert value(final, "awaithumans_tasks", status="cancelled") == 0
        assert value(final, "awaithumans_answer_return_seconds_count") == 1


async def test_outbox_failures_by_kind_and_channel(database_url: str) -> None:
    settings = make_settings(database_url, metrics_token=METRICS_TOKEN)
    with WebhookReceiver(status=500) as failing, WebhookReceiver(status=410) as gone:
        async with running_app(settings) as (_app, client):
            for receiver in (failing, gone):
                made = await client.post("/api/tasks", json=body(callback_url=receiver.url))
                assert made.status_code == 201, made.text
                done = await client.post(
                    f"/api/tasks/{made.json()['id']}/complete",
                    json={"response": {"approved": False}},
                )
                assert done.status_code == 200, done.text

            def failures(samples: Samples, final: str) -> float:
                return value(
                    samples,
                    "awaithumans_outbox_failures_total",
                    kind="webhook",
                    channel="webhook",
                    final=final,
                )

            async def failed() -> Samples | None:
                now = await scrape(client)
                return now if failures(now, "false") >= 1 and failures(now, "true") == 1 else None

            # A 500 is retried (final=false), a 410 is not (final=true).
            seen = await until(failed, timeout=20)
            assert value(seen, "awaithumans_outbox_delivered_total", kind="webhook") == 0

            # The receiver recovers: the retry delivers, and is counted as delivered.
            failing.status = 200

            async def delivered() -> bool:
                now = await scrape(client)
                got = value(
                    now, "awaithumans_outbox_delivered_total", kind="webhook", channel="webhook"
                )
                return got == 1

            await until(delivered, timeout=30)
            assert len(failing.deliveries) == 1
            assert failures(await scrape(client), "true") == 1


async def test_outbox_lag_is_the_age_of_the_oldest_due_job(database_url: str) -> None:
    settings = make_settings(database_url, metrics_token=METRICS_TOKEN)
    hold = threading.Event()
    with WebhookReceiver(hold=hold) as slow:
        async with running_app(settings) as (_app, client):
            assert value(await scrape(client), "awaithumans_outbox_lag_seconds") == 0
            made = await client.post("/api/tasks", json=body(callback_url=slow.url))
            await client.post(
                f"/api/tasks/{made.json()['id']}/complete", json={"response": {"approved": True}}
            )

            # The receiver holds its reply: the job stays due and undelivered, and ages.
            async def late() -> Samples | None:
                now = await scrape(client)
                return now if value(now, "awaithumans_outbox_lag_seconds") >= 1 else None

            seen = await until(late, timeout=15)
            assert value(seen, "awaithumans_outbox_due") == 1
            hold.set()
            await asyncio.to_thread(slow.wait_for, 1)

            async def caught_up() -> bool:
                now = await scrape(client)
                return (
                    value(now, "awaithumans_outbox_due") == 0
                    and value(now, "awaithumans_outbox_lag_seconds") == 0
                )

            await until(caught_up, timeout=15)


# -- traces -------------------------------------------------------------------------------------


async def test_traces_of_requests_queries_and_calls_out(database_url: str) -> None:
    exporter = InMemorySpanExporter()
    settings = make_settings(database_url)
    app = create_app(settings, span_exporter=exporter)
    with WebhookReceiver() as receiver:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as client:
                made = await client.post("/api/tasks", json=body(callback_url=receiver.url))
                assert made.status_code == 201, made.text
                done = await client.post(
                    f"/api/tasks/{made.json()['id']}/complete",
                    json={"response": {"approved": True}},
                )
                assert done.status_code == 200
                await asyncio.to_thread(receiver.wait_for, 1)
                assert (await client.get("/api/health")).status_code == 200

                async def out_span() -> bool:
                    return any(s.kind is SpanKind.CLIENT for s in exporter.get_finished_spans())

                await until(out_span, timeout=10)
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    names = {s.name for s in servers}
    assert "POST /api/tasks" in names
    assert servers[0].resource.attributes["service.name"] == "awaithumans"
    assert "POST /api/tasks/{task_id}/complete" in names
    assert not any("health" in s.name for s in servers)  # probes are left out
    queries = [s for s in spans if s.instrumentation_scope is not None
               and "sqlalchemy" in s.instrumentation_scope.name]  # fmt: skip
    assert queries, "no SQLAlchemy spans"
    # The webhook's POST went out through httpx, traced as a client span.
    calls = [dict(s.attributes or {}) for s in spans if s.kind is SpanKind.CLIENT]
    urls = [str(a.get("url.full", a.get("http.url", ""))) for a in calls]
    assert any(url.startswith(receiver.url) for url in urls), calls
    # The answer's read of the task belongs to the answer's trace. (Writes are committed by
    # the writer task in batches across requests, so they are traces of their own.)
    answer = next(s for s in servers if s.name == "POST /api/tasks/{task_id}/complete")
    assert answer.context is not None
    assert any(
        q.context is not None and q.context.trace_id == answer.context.trace_id for q in queries
    )


async def test_json_lines_carry_the_trace_of_the_span_they_are_logged_in() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    formatter = JsonFormatter()
    record = logging.LogRecord("awaithumans.server", logging.INFO, __file__, 1, "hi", None, None)
    assert "trace_id" not in orjson.loads(formatter.format(record))
    with tracer.start_as_current_span("work") as span:
        entry = orjson.loads(formatter.format(record))
    context = span.get_span_context()
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_request_ids_only_with_json_logs(tmp_path: Any, log_format: str) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", log_format=log_format)
    async with running_app(settings) as (_app, client):
        got = await client.get("/api/health", headers={"X-Request-ID": "lb-123"})
        if log_format == "json":
            assert got.headers["x-request-id"] == "lb-123"
            fresh = await client.get("/api/health", headers={"X-Request-ID": "bad id\n"})
            assert len(fresh.headers["x-request-id"]) == 16
        else:
            assert "x-request-id" not in got.headers
