"""What a webhook receiver's answer does to the delivery: final, retried, or retried later.

The app runs in-process on a real SQLite database; its outbox posts over real HTTP to a
receiver on 127.0.0.1 that answers whatever status (and Retry-After) the URL names.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from awaithumans.server.services.delivery import retry_after_seconds
from awaithumans.testing import free_port
from tests._api import create_and_complete
from tests._app_fixtures import make_settings, running_app
from tests._waiting import until

FINAL = [400, 401, 403, 404, 410, 422]
RETRIED = [408, 409, 425, 429, 500, 502, 503, 504]


class StatusReceiver:
    """POST /s/<status>[?ra=<Retry-After>] answers <status> (with that Retry-After)."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                parts = urlsplit(self.path)
                status = int(parts.path.rsplit("/", 1)[1])
                with receiver._lock:
                    receiver.hits[self.path] += 1
                self.send_response(status)
                for value in parse_qs(parts.query).get("ra", []):
                    self.send_header("Retry-After", value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, status: int, retry_after: str | None = None) -> str:
        query = f"?ra={quote(retry_after)}" if retry_after is not None else ""
        return f"http://127.0.0.1:{self.port}/s/{status}{query}"

    def count(self, url: str) -> int:
        with self._lock:
            return self.hits[url.split(f":{self.port}", 1)[1]]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[StatusReceiver]:
    r = StatusReceiver()
    yield r
    r.close()


def body(key: str, callback_url: str) -> dict[str, Any]:
    return {
        "task": "Approve?",
        "payload": {},
        "payload_schema": {"type": "object"},
        "response_schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        "timeout_seconds": 600,
        "idempotency_key": key,
        "callback_url": callback_url,
    }


async def complete_with_callback(api: httpx.AsyncClient, key: str, url: str) -> str:
    return await create_and_complete(api, body(key, url))


async def delivery(api: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    rows = (await api.get("/api/admin/deliveries", params={"task_id": task_id})).json()
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    return row


def utc(stamp: str) -> datetime:
    when = datetime.fromisoformat(stamp)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def test_final_statuses_fail_at_once_and_the_rest_are_retried(
    tmp_path: Path, receiver: StatusReceiver
) -> None:
    # Two attempts at most: a retried status ends as failed after its second try, a final
    # one after its first.
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", webhook_max_attempts=2
    )
    refused = f"http://127.0.0.1:{free_port()}/nobody-listens"
    urls = {str(s): receiver.url(s) for s in FINAL + RETRIED} | {"refused": refused}
    async with running_app(settings) as (_app, api):
        tasks = {
            name: await complete_with_callback(api, f"st-{name}", u) for name, u in urls.items()
        }

        async def all_failed() -> dict[str, dict[str, Any]] | None:
            rows = {name: await delivery(api, t) for name, t in tasks.items()}
            return rows if all(r["status"] == "failed" for r in rows.values()) else None

        rows = await until(all_failed, timeout=30)

    for status in FINAL:
        row = rows[str(status)]
        assert (row["attempts"], row["last_status_code"]) == (1, status), row
        assert receiver.count(urls[str(status)]) == 1
    for status in RETRIED:
        row = rows[str(status)]
        assert (row["attempts"], row["last_status_code"]) == (2, status), row
        assert receiver.count(urls[str(status)]) == 2
    assert rows["refused"]["attempts"] == 2
    assert rows["refused"]["last_status_code"] is None
    assert "ConnectError" in rows["refused"]["last_error"]


async def test_retry_after_is_honoured_in_seconds_and_as_a_date_and_capped(
    tmp_path: Path, receiver: StatusReceiver
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    cases = {
        "seconds": (receiver.url(429, "120"), 120.0),
        "date": (receiver.url(503, date), 300.0),
        "capped": (receiver.url(429, "86400"), 3600.0),
        # Not a Retry-After: the outbox's own backoff (about 2 s after a first try).
        "garbage": (receiver.url(503, "soon"), 2.0),
    }
    async with running_app(settings) as (_app, api):
        before = datetime.now(UTC)
        tasks = {
            name: await complete_with_callback(api, f"ra-{name}", url)
            for name, (url, _) in cases.items()
        }

        async def all_tried() -> dict[str, dict[str, Any]] | None:
            rows = {name: await delivery(api, t) for name, t in tasks.items()}
            return rows if all(r["attempts"] == 1 for r in rows.values()) else None

        rows = await until(all_tried, timeout=20)
        after = datetime.now(UTC)

    for name, (url, wait) in cases.items():
        row = rows[name]
        assert row["status"] == "pending", row
        assert receiver.count(url) == 1
        due = utc(row["next_attempt_at"])
        # The date form is whole seconds, hence the second of slack either side.
        assert before + timedelta(seconds=wait - 1.5) <= due, (name, due - before)
        assert due <= after + timedelta(seconds=wait + 1.5), (name, due - after)


def test_retry_after_parsing() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7", now=now) == 7.0
    assert retry_after_seconds("Tue, 01 Jan 2030 00:01:00 GMT", now=now) == 60.0
    # A date in the past means now; an absurd delay is capped; nonsense is ignored.
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0
    assert retry_after_seconds("9" * 40, now=now) == 3600.0
    for bad in (None, "", "-3", "1.5", "soon", "Mon, 99 Foo 2015 07:28:00 GMT"):
        assert retry_after_seconds(bad, now=now) is None
