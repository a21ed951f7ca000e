"""Schemathesis against the app's own OpenAPI document: no request, valid or not, gets a 5xx.

Every operation in ``/api/openapi.json`` is driven with generated requests (schema-valid and
schema-breaking ones) through the in-process app with the admin token, on SQLite and on
PostgreSQL. Each response must not be a server error, must use a status code and content
type the document declares, must match the declared response schema, and must not leak
the server's insides. Path parameters are drawn partly from seeded rows (tasks in several
states, a user, an agent key, a delivery) so that the handlers behind valid ids run too.

Generation is derandomised (the same examples every run) so that CI never flakes; a failure
names the operation and the shrunk request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests._app_fixtures import ADMIN_TOKEN, make_settings, running_app

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
LEAKS = ("Traceback", 'File "', "sqlalchemy", "asyncpg", "sqlite3")
REQUEST_TIMEOUT = 30.0

STRICT = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}

Send = Callable[[dict[str, Any]], httpx.Response]


def task(key: str, **changes: Any) -> dict[str, Any]:
    return {
        "task": f"Seed {key}",
        "payload": {"n": 1},
        "payload_schema": {"type": "object"},
        "response_schema": STRICT,
        "timeout_seconds": 3600,
        "idempotency_key": key,
        **changes,
    }


async def seed(admin: httpx.AsyncClient) -> dict[str, list[Any]]:
    """Rows for path parameters: the fuzzer then reaches past the 404s."""

    async def ok(resp: Any) -> dict[str, Any]:
        r = await resp
        assert r.status_code < 300, r.text
        data: dict[str, Any] = r.json() if r.content else {}
        return data

    user = await ok(
        admin.post(
            "/api/admin/users",
            json={"email": "rev@acme.com", "display_name": "Rev", "password": "pass-word-123"},
        )
    )
    key = await ok(admin.post("/api/admin/agent-keys", json={"name": "seed-bot"}))
    strict = await ok(admin.post("/api/tasks", json=task("open-strict")))
    lenient = await ok(
        admin.post("/api/tasks", json=task("open-lenient", response_schema={"type": "object"}))
    )
    assigned = await ok(
        admin.post("/api/tasks", json=task("assigned", assign_to={"user_id": user["id"]}))
    )
    # email is not configured on this server: the notification is recorded as a delivery
    # and skipped, with no network involved.
    notified = await ok(admin.post("/api/tasks", json=task("notified", notify=["email:a@b.io"])))
    done = await ok(admin.post("/api/tasks", json=task("done")))
    await ok(admin.post(f"/api/tasks/{done['id']}/complete", json={"response": {"ok": True}}))
    cancelled = await ok(admin.post("/api/tasks", json=task("cancelled")))
    await ok(admin.post(f"/api/tasks/{cancelled['id']}/cancel", json={"reason": "seed"}))
    deliveries = (await admin.get("/api/admin/deliveries")).json()
    assert deliveries, "the notify route should have queued a delivery"
    open_ids = [strict["id"], lenient["id"], assigned["id"], notified["id"]]
    terminal_ids = [done["id"], cancelled["id"]]
    return {
        "task_id": open_ids + terminal_ids,
        # A long-poll on an open task waits for its timeout; only finished tasks answer
        # at once.
        "poll_task_id": terminal_ids,
        "user_id": [user["id"]],
        "key_id": [key["id"]],
        "delivery_id": [d["id"] for d in deliveries],
    }


def case_strategy(
    op: Any, mode: GenerationMode, seeds: dict[str, list[Any]]
) -> st.SearchStrategy[Case[Any]]:
    generated: st.SearchStrategy[Case[Any]] = op.as_strategy(generation_mode=mode)
    if mode is not GenerationMode.POSITIVE:
        return generated
    names = [p.name for p in op.path_parameters]
    if not names:
        return generated
    (name,) = names
    pool = seeds.get("poll_task_id" if op.path.endswith("/poll") else name)
    if not pool:
        return generated
    seeded = st.sampled_from(pool).flatmap(
        lambda value: op.as_strategy(generation_mode=mode, path_parameters={name: value})
    )
    return st.one_of(generated, seeded)


def has_inputs(op: Any) -> bool:
    return bool(list(op.iter_parameters())) or bool(list(op.body))


def httpx_kwargs(case: Case[Any]) -> dict[str, Any]:
    kw = case.as_transport_kwargs(
        base_url="http://testserver", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    out: dict[str, Any] = {
        "method": kw["method"],
        "url": kw["url"],
        "headers": kw["headers"],
        "params": kw.get("params") or None,
        "cookies": kw.get("cookies") or None,
    }
    if "json" in kw:
        out["json"] = kw["json"]
    if kw.get("data") is not None:
        out["content"] = kw["data"]
    unknown = set(kw) - {"method", "url", "headers", "params", "cookies", "json", "data"}
    assert not unknown, f"schemathesis produced request arguments this test ignores: {unknown}"
    return out


def fuzz_operation(op: Any, mode: GenerationMode, seeds: dict[str, list[Any]], send: Send) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=case_strategy(op, mode, seeds))
    def check(case: Case[Any]) -> None:
        response = send(httpx_kwargs(case))
        for leak in LEAKS:
            assert leak not in response.text, f"{case.method} {case.formatted_path}: {leak!r}"
        case.validate_response(response, checks=CHECKS)

    check()


def fuzz_all(schema: Any, seeds: dict[str, list[Any]], send: Send) -> list[str]:
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in GenerationMode:
            if mode is GenerationMode.NEGATIVE and not has_inputs(op):
                continue
            try:
                fuzz_operation(op, mode, seeds, send)
            except Unsatisfiable:
                # Nothing in this operation can be made schema-invalid (e.g. a lone path
                # parameter of type string): there is no negative case to send.
                if mode is GenerationMode.POSITIVE:
                    raise
            except (Exception, FailureGroup) as exc:
                # Keep going: one report naming every failing operation beats one at a time.
                notes = "\n".join(getattr(exc, "__notes__", []))
                failures.append(f"{op.label} [{mode.value}]: {exc}\n{notes}")
    return failures


async def test_openapi_fuzz_finds_no_server_errors(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (_app, admin):
        document = await admin.get("/api/openapi.json")
        assert document.status_code == 200
        schema = schemathesis.openapi.from_dict(document.json())
        seeds = await seed(admin)
        loop = asyncio.get_running_loop()

        def send(kwargs: dict[str, Any]) -> httpx.Response:
            # Hypothesis drives a synchronous test; it runs in a worker thread and hands each
            # request to this loop, where the app's lifespan (writer, scheduler) lives.
            future = asyncio.run_coroutine_threadsafe(
                admin.request(**kwargs, timeout=REQUEST_TIMEOUT), loop
            )
            return future.result(timeout=REQUEST_TIMEOUT + 5)

        failures = await asyncio.to_thread(fuzz_all, schema, seeds, send)
        # The app is still healthy after the barrage.
        health = await admin.get("/api/health")
        assert health.status_code == 200, health.text
    assert not failures, "\n\n".join(failures)
