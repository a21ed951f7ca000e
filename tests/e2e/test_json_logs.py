"""AWAITHUMANS_LOG_FORMAT=json, from a real ``awaithumans serve`` process: every line it
writes, from start to stop, is one JSON object a log shipper can read."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from awaithumans.testing import ServerProcess, WebhookReceiver
from tests._waiting import until

pytestmark = pytest.mark.e2e

BODY: dict[str, Any] = {
    "task": "Approve?",
    "payload": {"amount": 5},
    "payload_schema": {"type": "object", "properties": {"amount": {"type": "integer"}}},
    "response_schema": {
        "type": "object",
        "properties": {"approved": {"type": "boolean"}},
        "required": ["approved"],
    },
    "timeout_seconds": 600,
    "idempotency_key": "json-logs-1",
}


def lines_of(log: str) -> list[dict[str, Any]]:
    entries = []
    for number, line in enumerate(log.splitlines(), start=1):
        entry = json.loads(line)  # fails the test on the first line that is not JSON
        assert isinstance(entry, dict), f"line {number}: {line}"
        for key in ("time", "level", "logger", "message"):
            assert key in entry, f"line {number} has no {key}: {line}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"]), line
        entries.append(entry)
    return entries


async def test_every_line_is_json_with_request_and_task_ids(tmp_path: Path) -> None:
    server = ServerProcess(
        workdir=tmp_path,
        env={"AWAITHUMANS_LOG_FORMAT": "json", "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3"},
        args=["--log-level", "info", "--access-log"],
    )
    with WebhookReceiver(status=500) as failing, server:
        # The banner's setup link is read from its JSON line.
        assert server.setup_token is not None
        assert re.fullmatch(r"[A-Za-z0-9_-]{20,}", server.setup_token), server.setup_token
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
        ) as http:
            made = await http.post(
                "/api/tasks",
                json={**BODY, "callback_url": failing.url},
                headers={"X-Request-ID": "lb-req-0001"},
            )
            assert made.status_code == 201, made.text
            assert made.headers["x-request-id"] == "lb-req-0001"
            task_id = made.json()["id"]
            done = await http.post(
                f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}}
            )
            assert done.status_code == 200
            own_id = done.headers["x-request-id"]
            refused = await http.post("/api/tasks", content=b"{not json")
            assert refused.status_code == 422

            # The webhook's receiver answers 500: the outbox says so in a warning line.
            async def warned() -> bool:
                return "webhook job" in server.logs()

            await until(warned, timeout=20, why=server.logs)
        server.stop()
        entries = lines_of(server.logs())

    by_logger: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_logger.setdefault(entry["logger"], []).append(entry)
    banner = " ".join(e["message"] for e in by_logger["awaithumans.server.banner"])
    assert f"Server running at {server.url}" in banner
    assert "/setup?token=" in banner
    assert any("Application startup complete" in e["message"] for e in by_logger["uvicorn.error"])

    access = by_logger["uvicorn.access"]
    create = next(e for e in access if e["method"] == "POST" and e["path"] == "/api/tasks")
    assert create["request_id"] == "lb-req-0001"
    assert create["status"] == 201
    assert create["client"].startswith("127.0.0.1")
    answer = next(e for e in access if e["path"] == f"/api/tasks/{task_id}/complete")
    assert answer["task_id"] == task_id
    assert answer["request_id"] == own_id
    assert answer["level"] == "INFO"
    assert any(e["status"] == 422 for e in access)

    warning = next(e for e in by_logger["awaithumans.server.outbox"] if "webhook" in e["message"])
    assert warning["level"] == "WARNING"
    assert task_id in warning["message"]
    # Shutdown is logged too, as JSON.
    assert any("Shutting down" in e["message"] for e in by_logger["uvicorn.error"])


async def test_text_stays_the_default(tmp_path: Path) -> None:
    with ServerProcess(workdir=tmp_path, args=["--access-log", "--log-level", "info"]) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            got = await http.get("/api/health")
            assert "x-request-id" not in got.headers
        await asyncio.to_thread(server.stop)
        log = server.logs()
    assert "✓ Server running at" in log
    assert '"GET /api/health HTTP/1.1" 200' in log
    assert not any(line.startswith("{") for line in log.splitlines())
