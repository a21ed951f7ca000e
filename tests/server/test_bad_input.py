"""Bad input gets a clear 4xx with a stable code, changes nothing and loses nothing.

Every refusal here is checked three ways: the status and ``{"error": CODE, "message": ...}``
body, the absence of anything from the server's insides (tracebacks, SQL), and an unchanged
world (tasks, their statuses and audit trails, users, agent keys, queued deliveries). Runs
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests._app_fixtures import make_settings, running_app

TASK: dict[str, Any] = {
    "task": "Approve the refund?",
    "payload": {"amount": 5, "currency": "EUR"},
    "payload_schema": {
        "type": "object",
        "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}},
        "required": ["amount"],
    },
    "response_schema": {
        "type": "object",
        "properties": {
            "approved": {"type": "boolean"},
            "note": {"type": "string", "maxLength": 20},
        },
        "required": ["approved"],
    },
    "timeout_seconds": 600,
}

LEAKS = ("Traceback", 'File "', "sqlalchemy", "asyncpg", "sqlite3", "psycopg")
PASSWORD = "pass-word-123"


def task_body(key: str, **changes: Any) -> dict[str, Any]:
    return {**TASK, "idempotency_key": key, **changes}


def assert_refused(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape, the expected code, and nothing of the server's insides."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    for leak in LEAKS:
        assert leak not in resp.text, resp.text
    body: dict[str, Any] = resp.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert set(body) <= {"error", "message", "details"}, body
    return body


async def world(admin: httpx.AsyncClient) -> dict[str, Any]:
    """Everything a refusal must leave as it was, as the admin sees it."""
    listed = await admin.get("/api/tasks", params={"limit": 200})
    assert listed.status_code == 200, listed.text
    tasks = listed.json()["items"]
    audits: dict[str, list[Any]] = {}
    for t in tasks:
        audit = await admin.get(f"/api/tasks/{t['id']}/audit")
        assert audit.status_code == 200, audit.text
        audits[t["id"]] = [(a["id"], a["to_status"]) for a in audit.json()]
    users = (await admin.get("/api/admin/users")).json()
    keys = (await admin.get("/api/admin/agent-keys")).json()
    # Ids only: a delivery's own status moves on by itself as the outbox works.
    deliveries = [d["id"] for d in (await admin.get("/api/admin/deliveries")).json()]
    return {
        "tasks": [(t["id"], t["status"], t["updated_at"], t["assigned_to_user_id"]) for t in tasks],
        "audits": audits,
        "users": users,
        "keys": keys,
        "deliveries": deliveries,
    }


@pytest.fixture
async def app_pair(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app itself (to open more clients on its transport) and an admin client."""
    async with running_app(make_settings(database_url)) as pair:
        yield pair


def client_for(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


async def create(admin: httpx.AsyncClient, key: str, **changes: Any) -> dict[str, Any]:
    resp = await admin.post("/api/tasks", json=task_body(key, **changes))
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def raw_json(text: str | bytes) -> dict[str, Any]:
    content = text.encode() if isinstance(text, str) else text
    return {"content": content, "headers": {"content-type": "application/json"}}


# -- malformed bodies ------------------------------------------------------------------


MALFORMED = [
    b"{",
    b'{"task": }',
    b"{'task': 'single quotes'}",
    b'{"task": "x",}',
    b"\xff\xfe\x00{",
    b"not json at all",
    b'{"task": "\xff"}',  # not UTF-8
    b"[" * 100_000,  # past the parser's recursion limit
    # Python's parser takes these; JSON does not, and no column can hold them.
    b'{"task": "x", "payload": {"a": NaN}}',
    b'{"task": "x", "payload": {"a": Infinity}}',
    b'{"task": "x", "payload": {"a": -Infinity}}',
]


async def test_malformed_json_is_400_invalid_json(app_client: httpx.AsyncClient) -> None:
    await create(app_client, "existing")
    before = await world(app_client)
    for body in MALFORMED:
        resp = await app_client.post("/api/tasks", **raw_json(body))
        assert_refused(resp, 400, "INVALID_JSON")
    task_id = before["tasks"][0][0]
    resp = await app_client.post(f"/api/tasks/{task_id}/complete", **raw_json(b'{"response": '))
    assert_refused(resp, 400, "INVALID_JSON")
    resp = await app_client.post(
        f"/api/tasks/{task_id}/complete", **raw_json(b'{"response": {"approved": NaN}}')
    )
    assert_refused(resp, 400, "INVALID_JSON")
    assert await world(app_client) == before


async def test_wrong_types_are_422_with_details(app_client: httpx.AsyncClient) -> None:
    before = await world(app_client)
    resp = await app_client.post(
        "/api/tasks",
        json=task_body("k", task=5, payload=[1, 2], redact_payload="maybe", notify="slack:#a"),
    )
    body = assert_refused(resp, 422, "VALIDATION_ERROR")
    locs = {tuple(d["loc"]) for d in body["details"]}
    assert {("task",), ("payload",), ("redact_payload",), ("notify",)} <= locs, locs
    assert all(isinstance(d["msg"], str) and d["msg"] for d in body["details"])

    missing = await app_client.post("/api/tasks", json={"task": "x"})
    body = assert_refused(missing, 422, "VALIDATION_ERROR")
    assert {("payload",), ("response_schema",), ("idempotency_key",)} <= {
        tuple(d["loc"]) for d in body["details"]
    }
    unknown = await app_client.post("/api/tasks", json=task_body("k", colour="red"))
    body = assert_refused(unknown, 422, "VALIDATION_ERROR")
    assert ["colour"] in [d["loc"] for d in body["details"]]
    for not_an_object in (b"[]", b'"a string"', b"42", b"null"):
        assert_refused(
            await app_client.post("/api/tasks", **raw_json(not_an_object)), 422, "VALIDATION_ERROR"
        )
    no_body = await app_client.post("/api/tasks", headers={"content-type": "application/json"})
    assert_refused(no_body, 422, "VALIDATION_ERROR")
    as_text = await app_client.post(
        "/api/tasks", content=b'{"task": "x"}', headers={"content-type": "text/plain"}
    )
    assert_refused(as_text, 422, "VALIDATION_ERROR")
    too_long = await app_client.post("/api/tasks", json=task_body("k", task="x" * 501))
    assert_refused(too_long, 422, "VALIDATION_ERROR")
    for params in ({"limit": "many"}, {"limit": 0}, {"limit": 201}, {"status": "sleeping"}):
        assert_refused(await app_client.get("/api/tasks", params=params), 422, "VALIDATION_ERROR")
    assert await world(app_client) == before


async def test_text_and_nesting_no_backend_can_store_are_422(
    app_client: httpx.AsyncClient,
) -> None:
    """U+0000, lone surrogates and absurd nesting: PostgreSQL (or pydantic) would 500."""
    task = await create(app_client, "existing")
    before = await world(app_client)
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        (task_body("k\x00"), ["idempotency_key"]),
        (task_body("k", task="a\x00b"), ["task"]),
        (task_body("k", payload={"amount": 1, "note": "\x00"}), ["payload", "note"]),
        (task_body("k", task_metadata={"a\x00": 1}), ["task_metadata", "a\x00"]),
        (
            task_body("k", assign_to={"emails": ["a@b.io", "c\x00@d.io"]}),
            ["assign_to", "emails", 1],
        ),
    ]
    for body, loc in cases:
        refused = assert_refused(
            await app_client.post("/api/tasks", json=body), 422, "VALIDATION_ERROR"
        )
        assert refused["details"][0]["loc"] == loc
    surrogate = '{"task": "x", "payload": {"a": "\\ud800"}}'
    assert_refused(
        await app_client.post("/api/tasks", **raw_json(surrogate)), 422, "VALIDATION_ERROR"
    )
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    refused = assert_refused(
        await app_client.post("/api/tasks", json=task_body("k", payload_schema={}, payload=deep)),
        422,
        "VALIDATION_ERROR",
    )
    assert refused["details"][0]["type"] == "json_too_deep"
    for params in ({"q": "a\x00"}, {"assigned": "\x00"}):
        assert_refused(await app_client.get("/api/tasks", params=params), 422, "VALIDATION_ERROR")
    assert_refused(
        await app_client.post(
            f"/api/tasks/{task['id']}/complete",
            json={"response": {"approved": True, "note": "\x00"}},
        ),
        422,
        "VALIDATION_ERROR",
    )
    assert_refused(
        await app_client.post(f"/api/tasks/{task['id']}/cancel", json={"reason": "\x00"}),
        422,
        "VALIDATION_ERROR",
    )
    assert_refused(
        await app_client.post("/api/admin/users", json={"email": "a@b.io", "display_name": "\x00"}),
        422,
        "VALIDATION_ERROR",
    )
    assert await world(app_client) == before


# -- schemas ---------------------------------------------------------------------------


async def test_payload_not_matching_payload_schema(app_client: httpx.AsyncClient) -> None:
    before = await world(app_client)
    resp = await app_client.post(
        "/api/tasks", json=task_body("k", payload={"amount": "five", "currency": 3})
    )
    body = assert_refused(resp, 422, "SCHEMA_VALIDATION_FAILED")
    by_loc = {tuple(d["loc"]): d["msg"] for d in body["details"]}
    assert set(by_loc) == {("payload", "amount"), ("payload", "currency")}, by_loc
    assert "integer" in by_loc[("payload", "amount")]
    missing = await app_client.post("/api/tasks", json=task_body("k", payload={}))
    body = assert_refused(missing, 422, "SCHEMA_VALIDATION_FAILED")
    assert "amount" in body["details"][0]["msg"]
    assert await world(app_client) == before


INVALID_SCHEMAS = [
    {"type": "nope"},
    {"type": "object", "properties": {"a": {"minimum": "ten"}}},
    {"type": "string", "pattern": "("},
    {"$ref": "#/definitions/missing"},
    {"required": "approved"},
]


async def test_invalid_json_schema_is_400_invalid_schema(app_client: httpx.AsyncClient) -> None:
    before = await world(app_client)
    for schema in INVALID_SCHEMAS:
        resp = await app_client.post("/api/tasks", json=task_body("k", response_schema=schema))
        body = assert_refused(resp, 400, "INVALID_SCHEMA")
        assert "response_schema" in body["message"]
        resp = await app_client.post(
            "/api/tasks", json=task_body("k", payload_schema=schema, payload={})
        )
        assert_refused(resp, 400, "INVALID_SCHEMA")
    assert await world(app_client) == before


async def test_response_failing_the_response_schema_leaves_the_task_open(
    app_client: httpx.AsyncClient,
) -> None:
    task = await create(app_client, "answer-me")
    before = await world(app_client)
    wrong = [
        {},
        {"approved": "yes"},
        {"approved": True, "note": "x" * 21},
    ]
    for response in wrong:
        resp = await app_client.post(
            f"/api/tasks/{task['id']}/complete", json={"response": response}
        )
        body = assert_refused(resp, 422, "SCHEMA_VALIDATION_FAILED")
        assert body["details"], body
        assert all(d["loc"][0] == "response" for d in body["details"])
    both = await app_client.post(
        f"/api/tasks/{task['id']}/complete", json={"response": {"approved": 1, "note": "y" * 30}}
    )
    body = assert_refused(both, 422, "SCHEMA_VALIDATION_FAILED")
    assert {tuple(d["loc"]) for d in body["details"]} == {
        ("response", "approved"),
        ("response", "note"),
    }
    assert_refused(
        await app_client.post(f"/api/tasks/{task['id']}/complete", json={"response": "yes"}),
        422,
        "VALIDATION_ERROR",
    )
    assert await world(app_client) == before
    still = (await app_client.get(f"/api/tasks/{task['id']}")).json()
    assert still["status"] == "created"
    assert still["response"] is None

    done = await app_client.post(
        f"/api/tasks/{task['id']}/complete", json={"response": {"approved": True, "note": "ok"}}
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    assert done.json()["response"] == {"approved": True, "note": "ok"}
    audit = (await app_client.get(f"/api/tasks/{task['id']}/audit")).json()
    assert [a["to_status"] for a in audit] == ["created", "completed"]


# -- body size -------------------------------------------------------------------------


def chunks(total: int, size: int = 16 * 1024) -> Any:
    """A streamed body: httpx sends it chunked, without Content-Length."""

    async def gen() -> AsyncIterator[bytes]:
        sent = 0
        while sent < total:
            part = min(size, total - sent)
            sent += part
            yield b" " * part

    return gen()


def padded_task(key: str, size: int) -> bytes:
    """A valid create body of exactly ``size`` bytes (whitespace padding)."""
    text = json.dumps(task_body(key))
    assert len(text) < size
    return (text + " " * (size - len(text))).encode()


async def streamed(data: bytes, size: int = 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_oversize_body_is_413_with_and_without_content_length(
    app_client: httpx.AsyncClient,
) -> None:
    """The default limit is 1 MiB."""
    before = await world(app_client)
    limit = 1024 * 1024
    over = padded_task("big", limit + 1)
    resp = await app_client.post("/api/tasks", **raw_json(over))
    body = assert_refused(resp, 413, "PAYLOAD_TOO_LARGE")
    assert str(limit) in body["message"]
    resp = await app_client.post(
        "/api/tasks",
        content=streamed(over, 64 * 1024),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in resp.request.headers
    assert resp.request.headers["transfer-encoding"] == "chunked"
    assert_refused(resp, 413, "PAYLOAD_TOO_LARGE")
    # A lying Content-Length changes nothing: the bytes are counted.
    resp = await app_client.post(
        "/api/tasks",
        content=streamed(over, 64 * 1024),
        headers={"content-type": "application/json", "content-length": "100"},
    )
    assert_refused(resp, 413, "PAYLOAD_TOO_LARGE")
    assert await world(app_client) == before
    # Exactly at the limit is fine.
    ok = await app_client.post("/api/tasks", **raw_json(padded_task("at-limit", limit)))
    assert ok.status_code == 201, ok.text


@pytest.fixture
async def small_limit(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(database_url, max_body_bytes=4096)) as (_app, client):
        yield client


async def test_body_limit_setting_applies_everywhere(small_limit: httpx.AsyncClient) -> None:
    client = small_limit
    task = await create(client, "small")
    before = await world(client)
    targets = [
        "/api/tasks",
        f"/api/tasks/{task['id']}/complete",
        f"/api/tasks/{task['id']}/cancel",
        "/api/admin/users",
        "/api/auth/login",
    ]
    for path in targets:
        resp = await client.post(path, **raw_json(b" " * 5000))
        assert_refused(resp, 413, "PAYLOAD_TOO_LARGE")
        resp = await client.post(
            path, content=chunks(5000, 1000), headers={"content-type": "application/json"}
        )
        assert_refused(resp, 413, "PAYLOAD_TOO_LARGE")
    assert await world(client) == before
    ok = await client.post(
        "/api/tasks",
        content=streamed(padded_task("under", 4000), 500),
        headers={"content-type": "application/json"},
    )
    assert ok.status_code == 201, ok.text


# -- ids, tokens, ranges ---------------------------------------------------------------


BAD_IDS = [
    "tsk_" + "0" * 24,  # well-formed, never issued
    "tsk_" + "f" * 24,
    "nope",
    "tsk_XYZ",
    "TSK_" + "0" * 24,
    "tsk_" + "0" * 25,
    "x" * 300,
    "%20",
    "1; DROP TABLE tasks",
    "' OR '1'='1",
]


async def test_unknown_and_ill_formed_task_ids_are_404(app_client: httpx.AsyncClient) -> None:
    await create(app_client, "existing")
    before = await world(app_client)
    for task_id in BAD_IDS:
        for method, suffix, body in (
            ("GET", "", None),
            ("GET", "/poll?timeout=1", None),
            ("GET", "/audit", None),
            ("POST", "/complete", {"response": {"approved": True}}),
            ("POST", "/claim", None),
            ("POST", "/cancel", None),
        ):
            resp = await app_client.request(method, f"/api/tasks/{task_id}{suffix}", json=body)
            assert_refused(resp, 404, "TASK_NOT_FOUND")
    assert await world(app_client) == before


async def test_missing_or_bad_bearer_token_is_401(
    app_pair: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, admin = app_pair
    task = await create(admin, "existing")
    before = await world(admin)
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/api/tasks", None),
        ("POST", "/api/tasks", task_body("sneaky")),
        ("GET", f"/api/tasks/{task['id']}", None),
        ("GET", f"/api/tasks/{task['id']}/poll?timeout=1", None),
        ("POST", f"/api/tasks/{task['id']}/complete", {"response": {"approved": True}}),
        ("POST", f"/api/tasks/{task['id']}/claim", None),
        ("POST", f"/api/tasks/{task['id']}/cancel", None),
        ("GET", "/api/admin/users", None),
        ("POST", "/api/admin/agent-keys", {"name": "sneaky"}),
    ]
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token abc"},
        {"Authorization": "bearer ah_live_xxxxxxxx_" + "y" * 32},
    ]
    async with client_for(app) as anon:
        for header in headers:
            for method, path, body in requests:
                resp = await anon.request(method, path, json=body, headers=header)
                assert_refused(resp, 401, "UNAUTHORIZED")
        assert_refused(await anon.get("/api/auth/me"), 401, "UNAUTHORIZED")
        anon.cookies.set("ah_session", "forged.cookie.value")
        assert_refused(await anon.get("/api/tasks"), 401, "UNAUTHORIZED")
    assert await world(admin) == before


async def test_timeout_out_of_range_is_422(app_client: httpx.AsyncClient) -> None:
    before = await world(app_client)
    for timeout in (59, 2592001, 0, -1, 10**12, 600.5, "ten minutes", None, True):
        resp = await app_client.post("/api/tasks", json=task_body("k", timeout_seconds=timeout))
        body = assert_refused(resp, 422, "TIMEOUT_OUT_OF_RANGE")
        assert "60" in body["message"]
        assert "2592000" in body["message"]
        assert ["timeout_seconds"] in [d["loc"] for d in body["details"]]
    assert await world(app_client) == before
    for ok in (60, 2592000):
        await create(app_client, f"edge-{ok}", timeout_seconds=ok)


async def test_answering_a_finished_task_is_409_and_keeps_the_answer(
    app_client: httpx.AsyncClient,
) -> None:
    done = await create(app_client, "done")
    answered = await app_client.post(
        f"/api/tasks/{done['id']}/complete", json={"response": {"approved": True}}
    )
    assert answered.status_code == 200, answered.text
    cancelled = await create(app_client, "cancelled")
    assert (await app_client.post(f"/api/tasks/{cancelled['id']}/cancel")).status_code == 200
    before = await world(app_client)
    for task_id, state in ((done["id"], "completed"), (cancelled["id"], "cancelled")):
        for attempt in ({"approved": False}, {"approved": True}):
            resp = await app_client.post(
                f"/api/tasks/{task_id}/complete", json={"response": attempt}
            )
            body = assert_refused(resp, 409, "TASK_ALREADY_TERMINAL")
            assert state in body["message"]
        assert_refused(
            await app_client.post(f"/api/tasks/{task_id}/claim"), 409, "TASK_ALREADY_TERMINAL"
        )
        assert_refused(
            await app_client.post(f"/api/tasks/{task_id}/cancel"), 409, "TASK_ALREADY_TERMINAL"
        )
    assert await world(app_client) == before
    poll = (await app_client.get(f"/api/tasks/{done['id']}/poll", params={"timeout": 1})).json()
    assert poll["response"] == {"approved": True}


# -- create options --------------------------------------------------------------------


BAD_ROUTES = [
    "bogus",
    "slack:",
    "slack:#",
    "email:not-an-email",
    "sms:+15551234567",
    "slack:#Has Spaces",
    "email:a@b",
]


async def test_bad_notify_routes_are_400_naming_the_route(app_client: httpx.AsyncClient) -> None:
    before = await world(app_client)
    for route in BAD_ROUTES:
        resp = await app_client.post("/api/tasks", json=task_body("k", notify=["slack:#ok", route]))
        body = assert_refused(resp, 400, "INVALID_NOTIFY_ROUTE")
        assert repr(route) in body["message"], body
    too_many = await app_client.post(
        "/api/tasks", json=task_body("k", notify=[f"slack:#c{i}" for i in range(21)])
    )
    assert_refused(too_many, 422, "VALIDATION_ERROR")
    assert await world(app_client) == before


async def test_bad_callback_url_is_400(app_client: httpx.AsyncClient) -> None:
    before = await world(app_client)
    for url in (
        "ftp://example.com/hook",
        "not a url",
        "http://",
        "https:///path-only",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "//example.com/no-scheme",
        "",
    ):
        resp = await app_client.post("/api/tasks", json=task_body("k", callback_url=url))
        body = assert_refused(resp, 400, "INVALID_CALLBACK_URL")
        assert "callback_url" in body["message"]
    too_long = await app_client.post(
        "/api/tasks", json=task_body("k", callback_url="https://a.io/" + "x" * 2048)
    )
    assert_refused(too_long, 422, "VALIDATION_ERROR")
    assert await world(app_client) == before


async def test_bad_assign_to_shape_is_400(app_client: httpx.AsyncClient) -> None:
    before = await world(app_client)
    assign_to: dict[str, Any]
    for assign_to in (
        {},
        {"name": "alice"},
        {"email": 5},
        {"email": None},
        {"emails": []},
        {"emails": "a@b.io"},
        {"emails": ["a@b.io", 7]},
        {"user_id": 42},
        {"user_id": None},
    ):
        resp = await app_client.post("/api/tasks", json=task_body("k", assign_to=assign_to))
        assert_refused(resp, 400, "INVALID_ASSIGNEE")
    for not_a_dict in ("alice@acme.com", ["alice@acme.com"], 5):
        resp = await app_client.post("/api/tasks", json=task_body("k", assign_to=not_a_dict))
        assert_refused(resp, 422, "VALIDATION_ERROR")
    assert await world(app_client) == before


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def test_bad_cursor_is_400(app_client: httpx.AsyncClient) -> None:
    for i in range(3):
        await create(app_client, f"page-{i}")
    page = (await app_client.get("/api/tasks", params={"limit": 2})).json()
    good = page["next_cursor"]
    assert good
    before = await world(app_client)
    tid = "tsk_" + "0" * 24
    for cursor in (
        "!!!",
        "YQ==",
        "a",
        good[:-3],
        b64("not a time|" + tid),
        b64("2020-01-01T00:00:00|" + tid),  # naive: the server issues only aware times
        b64("0001-01-01T00:00:00+05:00|" + tid),  # before year 1 in UTC
        b64("9999-12-31T23:59:59-05:00|" + tid),  # after year 9999 in UTC
        b64("2020-01-01T00:00:00+00:00|\x00"),
        b64("2020-01-01T00:00:00+00:00|x' OR 1=1 --"),
        base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
    ):
        resp = await app_client.get("/api/tasks", params={"cursor": cursor})
        assert_refused(resp, 400, "INVALID_CURSOR")
    too_long = await app_client.get("/api/tasks", params={"cursor": "A" * 201})
    assert_refused(too_long, 422, "VALIDATION_ERROR")
    assert await world(app_client) == before
    rest = await app_client.get("/api/tasks", params={"limit": 2, "cursor": good})
    assert rest.status_code == 200
    assert len(rest.json()["items"]) == 1


# -- who may do what -------------------------------------------------------------------


async def make_reviewer(admin: httpx.AsyncClient, email: str, *, operator: bool) -> None:
    resp = await admin.post(
        "/api/admin/users",
        json={
            "email": email,
            "display_name": email.split("@")[0],
            "password": PASSWORD,
            "is_operator": operator,
        },
    )
    assert resp.status_code == 201, resp.text


@asynccontextmanager
async def signed_in(app: FastAPI, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own on the app's transport, holding that user's session cookie."""
    async with client_for(app) as client:
        resp = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        yield client


async def test_second_claim_is_409_task_already_claimed(
    app_pair: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, admin = app_pair
    # Operators both see the unassigned task, so the second claim reaches the state check.
    await make_reviewer(admin, "alice@acme.com", operator=True)
    await make_reviewer(admin, "bob@acme.com", operator=True)
    task = await create(admin, "claim-me")
    async with signed_in(app, "alice@acme.com") as alice, signed_in(app, "bob@acme.com") as bob:
        alice_id = (await alice.get("/api/auth/me")).json()["id"]
        first = await alice.post(f"/api/tasks/{task['id']}/claim")
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "in_progress"
        assert first.json()["assigned_to_user_id"] == alice_id
        before = await world(admin)
        second = await bob.post(f"/api/tasks/{task['id']}/claim")
        assert_refused(second, 409, "TASK_ALREADY_CLAIMED")
        again = await alice.post(f"/api/tasks/{task['id']}/claim")
        assert_refused(again, 409, "TASK_ALREADY_CLAIMED")
        assert await world(admin) == before
        # The claimant still answers it.
        done = await alice.post(
            f"/api/tasks/{task['id']}/complete", json={"response": {"approved": True}}
        )
        assert done.status_code == 200, done.text
        assert done.json()["completed_by_email"] == "alice@acme.com"


async def test_concurrent_claims_have_one_winner(
    app_pair: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, admin = app_pair
    emails = [f"op{i}@acme.com" for i in range(4)]
    for email in emails:
        await make_reviewer(admin, email, operator=True)
    task = await create(admin, "race")
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(signed_in(app, e)) for e in emails]
        results = await asyncio.gather(*(c.post(f"/api/tasks/{task['id']}/claim") for c in clients))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409], [r.text for r in results]
    for r in results:
        if r.status_code == 409:
            assert_refused(r, 409, "TASK_ALREADY_CLAIMED")
    audit = (await admin.get(f"/api/tasks/{task['id']}/audit")).json()
    assert [a["to_status"] for a in audit] == ["created", "in_progress"]


async def test_agent_key_may_not_answer_or_claim(
    app_pair: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, admin = app_pair
    made = await admin.post("/api/admin/agent-keys", json={"name": "bot"})
    assert made.status_code == 201, made.text
    async with client_for(app, made.json()["key"]) as bot:
        own = await bot.post("/api/tasks", json=task_body("bot-task"))
        assert own.status_code == 201, own.text
        task_id = own.json()["id"]
        before = await world(admin)
        resp = await bot.post(
            f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}}
        )
        assert_refused(resp, 403, "FORBIDDEN")
        assert_refused(await bot.post(f"/api/tasks/{task_id}/claim"), 403, "FORBIDDEN")
        assert_refused(await bot.get("/api/admin/users"), 403, "FORBIDDEN")
        assert_refused(
            await bot.post("/api/admin/agent-keys", json={"name": "more"}), 403, "FORBIDDEN"
        )
        assert await world(admin) == before
        assert (await bot.get(f"/api/tasks/{task_id}")).json()["status"] == "created"


# -- operator endpoints ----------------------------------------------------------------


async def test_admin_refusals_change_nothing(app_client: httpx.AsyncClient) -> None:
    made = await app_client.post(
        "/api/admin/users", json={"email": "carol@acme.com", "display_name": "Carol"}
    )
    assert made.status_code == 201, made.text
    user_id = made.json()["id"]
    before = await world(app_client)
    for patch in ({"display_name": None}, {"is_active": None}, {"is_operator": None}):
        resp = await app_client.patch(f"/api/admin/users/{user_id}", json=patch)
        body = assert_refused(resp, 422, "VALIDATION_ERROR")
        assert body["details"][0]["loc"] == list(patch)
    for bad in (
        {"display_name": "X"},  # unreachable: no email, no Slack id
        {"email": "not-an-email", "display_name": "X"},
        {"email": "carol@acme.com", "display_name": ""},
        {"email": "x@acme.com", "display_name": "X", "slack_user_id": "lowercase"},
    ):
        resp = await app_client.post("/api/admin/users", json=bad)
        assert resp.status_code == 422, resp.text
        assert_refused(resp, 422, resp.json()["error"])
    taken = await app_client.post(
        "/api/admin/users", json={"email": "Carol@Acme.com", "display_name": "Other"}
    )
    assert_refused(taken, 409, "EMAIL_TAKEN")
    weak = await app_client.post(
        "/api/admin/users", json={"email": "d@acme.com", "display_name": "D", "password": "x"}
    )
    assert_refused(weak, 422, "WEAK_PASSWORD")
    for user in ("usr_" + "0" * 24, "nobody"):
        assert_refused(
            await app_client.patch(f"/api/admin/users/{user}", json={"display_name": "Y"}),
            404,
            "USER_NOT_FOUND",
        )
        assert_refused(await app_client.delete(f"/api/admin/users/{user}"), 404, "USER_NOT_FOUND")
    assert_refused(
        await app_client.delete("/api/admin/agent-keys/key_nope"), 404, "AGENT_KEY_NOT_FOUND"
    )
    for delivery in ("0", "-1", "99999999999999999999", "abc", "1.5"):
        resp = await app_client.post(f"/api/admin/deliveries/{delivery}/redeliver")
        assert_refused(resp, 422, "VALIDATION_ERROR")
    assert_refused(
        await app_client.post("/api/admin/deliveries/2147483647/redeliver"),
        404,
        "DELIVERY_NOT_FOUND",
    )
    assert_refused(
        await app_client.get("/api/admin/deliveries", params={"status": "lost"}),
        422,
        "VALIDATION_ERROR",
    )
    assert await world(app_client) == before


async def test_unknown_routes_and_methods(app_client: httpx.AsyncClient) -> None:
    assert_refused(await app_client.get("/api/nope"), 404, "NOT_FOUND")
    assert_refused(await app_client.delete("/api/tasks"), 405, "METHOD_NOT_ALLOWED")
    assert_refused(await app_client.put("/api/tasks/tsk_x/complete"), 405, "METHOD_NOT_ALLOWED")


# -- loses nothing ---------------------------------------------------------------------


def bad_creates() -> Iterator[dict[str, Any]]:
    yield {"content": b"{", "headers": {"content-type": "application/json"}}
    yield {"json": task_body("bad-schema", response_schema={"type": "nope"})}
    yield {"json": task_body("bad-payload", payload={"amount": "x"})}
    yield {"json": task_body("bad-route", notify=["bogus"])}
    yield {"json": task_body("bad-nul\x00")}
    yield {"json": task_body("bad-timeout", timeout_seconds=5)}
    yield {"json": task_body("bad-assignee", assign_to={"user_id": 3})}
    yield {"json": task_body("bad-callback", callback_url="ftp://x")}


async def test_bad_requests_among_good_ones_lose_nothing(app_client: httpx.AsyncClient) -> None:
    """Creates share group-commit batches: refusals mixed into a burst sink no good create."""
    good = [app_client.post("/api/tasks", json=task_body(f"good-{i}")) for i in range(24)]
    bad = [app_client.post("/api/tasks", **kwargs) for kwargs in bad_creates() for _ in range(3)]
    results = await asyncio.gather(*good, *bad)
    ok, refused = results[: len(good)], results[len(good) :]
    assert [r.status_code for r in ok] == [201] * len(good), [r.text for r in ok]
    for r in refused:
        assert 400 <= r.status_code < 500, r.text
        assert_refused(r, r.status_code, r.json()["error"])
    listed = (await app_client.get("/api/tasks", params={"limit": 200})).json()["items"]
    assert sorted(t["idempotency_key"] for t in listed) == sorted(f"good-{i}" for i in range(24))


async def test_remote_schema_refs_are_refused_without_fetching(
    app_client: httpx.AsyncClient,
) -> None:
    from awaithumans.testing import WebhookReceiver

    with WebhookReceiver() as bait:
        before = await world(app_client)
        for field in ("payload_schema", "response_schema"):
            schema = {"$ref": f"http://127.0.0.1:{bait.port}/internal-secret"}
            resp = await app_client.post("/api/tasks", json=task_body("k", **{field: schema}))
            assert_refused(resp, 400, "INVALID_SCHEMA")
        assert await world(app_client) == before
        assert bait.deliveries == []


async def test_odd_assignees_and_urls_next_to_good_creates_lose_nothing(
    app_client: httpx.AsyncClient,
) -> None:
    bad = [
        task_body("odd-1", assign_to={"email": "a@b.io", "user_id": [1]}),
        task_body("odd-2", assign_to={"email": "a@b.io", "user_id": 5}),
        task_body("odd-3", callback_url="http://[::1"),
    ]
    good = [task_body(f"fine-{i}") for i in range(6)]
    results = await asyncio.gather(*(app_client.post("/api/tasks", json=b) for b in bad + good))
    for resp in results[: len(bad)]:
        assert 400 <= resp.status_code < 500, resp.text
    assert [r.status_code for r in results[len(bad) :]] == [201] * len(good)
    assigned = await app_client.post(
        "/api/tasks", json=task_body("odd-4", assign_to={"user_id": "usr_" + "0" * 24})
    )
    # An id not (yet) in the directory is recorded, not an error, and pins no one.
    assert assigned.status_code == 201, assigned.text
    assert assigned.json()["assigned_to_user_id"] is None
