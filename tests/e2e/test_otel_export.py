"""OpenTelemetry from a real ``awaithumans serve`` process: OTEL_EXPORTER_OTLP_ENDPOINT turns
tracing on, spans reach a collector over OTLP/HTTP, and the JSON log line of a request
carries the trace id of that request's span."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.support.otlp_collector import OtlpCollector, ReceivedSpan

pytestmark = pytest.mark.e2e

BODY: dict[str, Any] = {
    "task": "Approve?",
    "payload": {"amount": 5},
    "payload_schema": {"type": "object", "properties": {"amount": {"type": "integer"}}},
    "response_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}},
    "timeout_seconds": 600,
    "idempotency_key": "otel-1",
}


async def test_spans_reach_the_collector_and_the_logs_name_their_trace(tmp_path: Path) -> None:
    with OtlpCollector() as collector:
        server = ServerProcess(
            workdir=tmp_path,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_SERVICE_NAME": "awaithumans-e2e",
                # Export within a fraction of a second rather than the default 5 s.
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "AWAITHUMANS_LOG_FORMAT": "json",
            },
            args=["--access-log", "--log-level", "info"],
        )
        with server:
            async with httpx.AsyncClient(
                base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
            ) as http:
                made = await http.post("/api/tasks", json=BODY)
                assert made.status_code == 201, made.text
                assert (await http.get("/api/health")).status_code == 200

            async def exported() -> list[ReceivedSpan]:
                return collector.named("POST /api/tasks")

            spans = await until(exported, timeout=20, why=server.logs)
            server.stop()
            lines = [json.loads(line) for line in server.logs().splitlines()]

    span = spans[0]
    assert span.service == "awaithumans-e2e"
    assert not collector.named("GET /api/health")  # probes are not traced
    access = next(
        e for e in lines if e["logger"] == "uvicorn.access" and e.get("path") == "/api/tasks"
    )
    assert access["trace_id"] == span.trace_id
    health = next(
        e for e in lines if e["logger"] == "uvicorn.access" and e.get("path") == "/api/health"
    )
    assert "trace_id" not in health
    # The database work of the process was traced too (the writer's commits, the reads).
    with_db = [s for s in collector.spans if s.name.split(" ")[0] in ("SELECT", "INSERT")]
    assert with_db, sorted({s.name for s in collector.spans})
