"""The long-poll shortcut (``api/long_poll.py``) answers exactly as the route does.

Every request below goes to the app twice, on one SQLite file: once as served (well-formed
token-bearing polls answered by ``LongPollShortcut``, the rest passed on to FastAPI's
route) and once with the shortcut taken out of the middleware, so the route answers all.
Status, body and the headers that matter must be the same. A counter on the shortcut's
inner app shows which requests the shortcut kept for itself, so a shortcut that silently
stopped matching (and cost nothing but CPU) fails here too.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from awaithumans.server.api.long_poll import LongPollShortcut
from awaithumans.server.app import create_app
from awaithumans.server.settings import Settings
from tests._app_fixtures import ADMIN_TOKEN, make_settings

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
}


class _Counting:
    """Stands between the shortcut and the rest of the app; counts what is passed on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.passed: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope["query_string"].decode()
            self.passed.append(scope["path"] + (f"?{query}" if query else ""))
        await self.app(scope, receive, send)


def _find_shortcut(app: FastAPI) -> LongPollShortcut:
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, LongPollShortcut):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, LongPollShortcut), "the shortcut is not in the middleware stack"
    return layer


@dataclass
class Served:
    app: FastAPI
    client: httpx.AsyncClient
    counter: _Counting | None


@asynccontextmanager
async def served(settings: Settings, *, shortcut: bool) -> AsyncIterator[Served]:
    app = create_app(settings)
    if not shortcut:
        app.user_middleware = [
            m for m in app.user_middleware if cast(object, m.cls) is not LongPollShortcut
        ]
    async with app.router.lifespan_context(app):
        app.middleware_stack = app.build_middleware_stack()
        counter = None
        if shortcut:
            found = _find_shortcut(app)
            counter = found.app = _Counting(found.app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Served(app, c, counter)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_shortcut_answers_as_the_route_does(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'poll.db'}")
    admin = _bearer(ADMIN_TOKEN)
    async with served(settings, shortcut=True) as first:
        made = []
        for n in range(2):
            created = await first.client.post(
                "/api/tasks",
                headers=admin,
                json={
                    "task": f"Poll {n}",
                    "payload": {"ok": True},
                    "payload_schema": SCHEMA,
                    "response_schema": SCHEMA,
                    "timeout_seconds": 3600,
                    "idempotency_key": f"poll-{uuid.uuid4().hex}",
                },
            )
            assert created.status_code == 201, created.text
            made.append(created.json()["id"])
        done, open_ = made
        answered = await first.client.post(
            f"/api/tasks/{done}/complete", headers=admin, json={"response": {"ok": True}}
        )
        assert answered.status_code == 200, answered.text
        key = await first.client.post(
            "/api/admin/agent-keys", headers=admin, json={"name": "someone else"}
        )
        assert key.status_code == 201, key.text
        stranger = _bearer(key.json()["key"])

    unknown = "tsk_" + "0" * 24
    # (path, headers, taken by the shortcut?)
    cases: list[tuple[str, dict[str, str], bool]] = [
        (f"/api/tasks/{done}/poll", admin, True),
        (f"/api/tasks/{done}/poll?timeout=30", admin, True),
        (f"/api/tasks/{open_}/poll?timeout=1", admin, True),
        (f"/api/tasks/{unknown}/poll?timeout=1", admin, True),
        (f"/api/tasks/{done}/poll?timeout=1", stranger, True),
        (f"/api/tasks/{done}/poll?timeout=1", _bearer("not-a-token"), True),
        (f"/api/tasks/{done}/poll?timeout=0", admin, False),
        (f"/api/tasks/{done}/poll?timeout=31", admin, False),
        (f"/api/tasks/{done}/poll?timeout=abc", admin, False),
        # Other parameters are ignored by the route; the shortcut leaves them to it.
        (f"/api/tasks/{done}/poll?timeout=1&x=2", admin, False),
        (f"/api/tasks/{done.upper()}/poll", admin, False),
        ("/api/tasks/nope/poll", admin, False),
        (f"/api/tasks/{done}/poll", {}, False),
        (f"/api/tasks/{done}/poll", {"Authorization": "Basic eDp5"}, True),
    ]

    async def run_all(shortcut: bool) -> tuple[list[tuple[int, Any, str | None]], list[str]]:
        out = []
        async with served(settings, shortcut=shortcut) as s:
            for path, headers, _ in cases:
                got = await s.client.get(path, headers=headers)
                out.append((got.status_code, got.json(), got.headers.get("content-type")))
            passed = s.counter.passed if s.counter is not None else []
        return out, passed

    with_shortcut, passed_on = await run_all(shortcut=True)
    route_only, _ = await run_all(shortcut=False)

    for case, mine, reference in zip(cases, with_shortcut, route_only, strict=True):
        assert mine == reference, f"{case[0]} with {case[1]}: {mine} != {reference}"
    assert passed_on == [path for path, _, taken in cases if not taken]
    statuses = [status for status, _, _ in with_shortcut]
    assert statuses == [200, 200, 200, 404, 404, 401, 422, 422, 422, 200, 404, 404, 401, 401]
    assert with_shortcut[0][1]["status"] == "completed"
    assert with_shortcut[0][1]["response"] == {"ok": True}
    assert with_shortcut[2][1]["status"] == "created"


@pytest.mark.parametrize("query", [b"", b"timeout=1", b"timeout=30"])
def test_poll_timeout_reads_what_the_route_accepts(query: bytes) -> None:
    from awaithumans.server.api.long_poll import poll_timeout

    assert poll_timeout(query) == (int(query.split(b"=")[1]) if query else 25)


@pytest.mark.parametrize(
    "query", [b"timeout=0", b"timeout=31", b"timeout=01", b"timeout=1000", b"timeout=", b"t=1"]
)
def test_poll_timeout_leaves_the_rest_to_the_route(query: bytes) -> None:
    from awaithumans.server.api.long_poll import poll_timeout

    assert poll_timeout(query) is None
