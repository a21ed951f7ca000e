"""Client schemas cannot hold the server: linear patterns, size limits, bounded checks.

The freeze test runs a real server process and measures ``GET /api/health`` while the
requests that used to stall it (a backreference pattern over 1,000 strings: 9.9 s) and a
legal but heavy check arrive: no answer may be held 50 ms by the server's own work (its CPU
time during the answer; the machine is shared, so waits for a core do not count) and none
may take a second. The limits and messages go through the in-process app on
SQLite (the database plays no part); the budget and the busy refusal drive a
:class:`SchemaCache` with a small budget against its real worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from pydantic import BaseModel, Field

from awaithumans.server.errors import ApiError
from awaithumans.server.services.schema_shape import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_PATTERN_CHARS,
    MAX_PROPERTIES,
)
from awaithumans.server.services.schemas import SchemaCache
from awaithumans.testing import ServerProcess
from tests._app_fixtures import make_settings, running_app

EVIL = r"^(?:(a|aa)+\1$|.*)$"
HEALTH_MS = 50.0

NEUTRAL = {"type": "object"}


def body(**changes: Any) -> dict[str, Any]:
    return {
        "task": "Check this",
        "payload": {},
        "payload_schema": NEUTRAL,
        "response_schema": {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
        },
        "timeout_seconds": 600,
        "idempotency_key": f"k-{uuid.uuid4().hex}",
        **changes,
    }


def listing(item: dict[str, Any]) -> dict[str, Any]:
    """A payload schema: ``{"s": [item, ...]}``."""
    return {"type": "object", "properties": {"s": {"type": "array", "items": item}}}


def evil_body() -> dict[str, Any]:
    strings = ["a" * (24 + i % 7) + "b" for i in range(1_000)]
    return body(payload_schema=listing({"type": "string", "pattern": EVIL}), payload={"s": strings})


def heavy_body() -> dict[str, Any]:
    """Legal and dear to check (in a worker): 600 strings, each tried against 999 linear
    patterns, ~0.05 s of CPU; kept small so that it passes its 2 s budget on a loaded box."""
    branches: list[dict[str, Any]] = [
        {"type": "string", "pattern": f"[a-z]{{3}}\\d{{2}}-{i}$"} for i in range(999)
    ]
    strings = [f"abcdefghijklmn{k:06d}" for k in range(600)]
    schema = listing({"anyOf": [*branches, {"type": "string"}]})
    return body(payload_schema=schema, payload={"s": strings})


def cpu_ms(pid: int) -> float:
    """CPU time all of a process's threads have run, in ms (``/proc/PID/task/*/schedstat``)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError):  # a thread that just ended
            total += int(stat.read_text().split()[0])
    return total / 1e6


class Probe:
    """``GET /api/health`` back to back until stopped: each answer's latency, and the CPU
    time the server ran meanwhile.

    On a machine shared with other test runs, an answer can be late because the server
    waited for a core, not because it was busy: a stall of the server's own making shows
    as CPU time it spent during the wait (its event loop, or a thread holding the GIL).
    """

    def __init__(self, http: httpx.AsyncClient, pid: int) -> None:
        self.http = http
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (latency ms, server CPU ms)
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            cpu = cpu_ms(self.pid)
            started = time.perf_counter()
            resp = await self.http.get("/api/health")
            latency = (time.perf_counter() - started) * 1000
            self.samples.append((latency, cpu_ms(self.pid) - cpu))
            assert resp.status_code == 200, resp.text


async def while_probing(
    http: httpx.AsyncClient, pid: int, work: Callable[[], Awaitable[Any]]
) -> Any:
    """Run ``work`` while a probe measures health: no answer may be held 50 ms by the
    server's own work, and none may take a second whatever the machine's load."""
    probe = Probe(http, pid)
    task = asyncio.create_task(probe.run())
    try:
        result = await work()
    finally:
        probe.stop.set()
        await task
    assert len(probe.samples) >= 5, probe.samples
    latency = max(ms for ms, _ in probe.samples)
    held = max(min(ms, cpu) for ms, cpu in probe.samples)
    report = (
        f"health: {len(probe.samples)} answers, max {latency:.1f} ms; held by the server's"
        f" own work at most {held:.1f} ms"
    )
    print(report)
    assert held < HEALTH_MS, report
    assert latency < 1_000, report
    return result


async def test_evil_pattern_and_heavy_check_leave_the_server_responsive(
    sqlite_server: ServerProcess,
) -> None:
    headers = {"Authorization": f"Bearer {sqlite_server.admin_token}"}
    async with (
        httpx.AsyncClient(base_url=sqlite_server.url, headers=headers, timeout=30) as api,
        httpx.AsyncClient(base_url=sqlite_server.url, timeout=5) as health,
    ):
        await health.get("/api/health")  # connect before measuring
        assert sqlite_server.proc is not None
        pid = sqlite_server.proc.pid

        async def evil() -> list[tuple[httpx.Response, float]]:
            out = []
            for _ in range(5):
                started = time.perf_counter()
                resp = await api.post("/api/tasks", json=evil_body())
                out.append((resp, time.perf_counter() - started))
            return out

        for resp, seconds in await while_probing(health, pid, evil):
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"] == "UNSUPPORTED_PATTERN"
            assert "backreference" in resp.json()["message"]
            assert seconds < 1.0, seconds
        # The worker's work does not touch the loop either.
        started = time.perf_counter()
        made = await while_probing(health, pid, lambda: api.post("/api/tasks", json=heavy_body()))
        assert made.status_code == 201, made.text
        print(f"heavy create: {time.perf_counter() - started:.2f} s")
        listed = (await api.get("/api/tasks")).json()["items"]
        assert [t["id"] for t in listed] == [made.json()["id"]]


# -- limits, in-process ------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")) as (
        _app,
        http,
    ):
        yield http


def nested(depth: int) -> dict[str, Any]:
    """A schema whose objects and arrays nest exactly ``depth`` levels."""
    # {"type": "string"} is 1 level, {"type": ["string"]} 2; each field adds 2.
    schema: dict[str, Any] = {"type": "string"} if depth % 2 else {"type": ["string"]}
    for _ in range((depth - 1) // 2 if depth % 2 else (depth - 2) // 2):
        schema = {"properties": {"a": schema}}
    return schema


def wide(count: int) -> dict[str, Any]:
    return {"type": "object", "properties": {f"f{i}": {"type": "string"} for i in range(count)}}


DOUBLING = {
    "$defs": {
        **{f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2} for i in range(30)},
        "d30": {"type": "integer"},
    },
    "$ref": "#/$defs/d0",
}
TOO_COMPLEX: list[dict[str, Any]] = [
    {"type": "string", "pattern": "a" * (MAX_PATTERN_CHARS + 1)},
    {"patternProperties": {"b" * (MAX_PATTERN_CHARS + 1): {}}},
    nested(MAX_DEPTH + 1),
    wide(MAX_PROPERTIES + 1),
    {"enum": list(range(MAX_NODES))},
    DOUBLING,  # 62 definitions, 2^30 evaluations of one integer
]
BACKTRACKING: list[dict[str, Any]] = [
    {"type": "string", "pattern": EVIL},
    {"type": "string", "pattern": r"^(?=.*\d)\w{8,}$"},
    {"type": "string", "pattern": r"(?<!x)y"},
    {"patternProperties": {r"^(\w)\1$": {}}},
    {"properties": {"a": {"$ref": "#/$defs/b"}}, "$defs": {"b": {"pattern": r"(?!a)b"}}},
]


async def refused(http: httpx.AsyncClient, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Send ``schema`` as each of the two schemas; the two refusals."""
    out = []
    for changes in ({"response_schema": schema}, {"payload_schema": schema, "payload": {}}):
        resp = await http.post("/api/tasks", json=body(**changes))
        assert resp.status_code == 400, resp.text
        assert "Traceback" not in resp.text
        out.append(resp.json())
    return out


async def test_each_limit_has_its_code_and_creates_nothing(client: httpx.AsyncClient) -> None:
    for schema in TOO_COMPLEX:
        for answer in await refused(client, schema):
            assert answer["error"] == "SCHEMA_TOO_COMPLEX", answer
    for schema in BACKTRACKING:
        for answer in await refused(client, schema):
            assert answer["error"] == "UNSUPPORTED_PATTERN", answer
            assert "linear time" in answer["message"]
    # A pattern that is not a regular expression at all stays an invalid schema.
    for answer in await refused(client, {"type": "string", "pattern": "(a"}):
        assert answer["error"] == "INVALID_SCHEMA", answer
    assert (await client.get("/api/tasks")).json()["items"] == []


async def test_schemas_at_the_limits_and_pydantic_forms_work(client: httpx.AsyncClient) -> None:
    class Shipping(BaseModel):
        zip_code: Annotated[str, Field(pattern=r"^\d{5}(-\d{4})?$", description="US ZIP")]
        phone: Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{7,20}$")]
        email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")]
        sku: Annotated[str, Field(pattern=r"^[A-Z]{3}-\d{4}$", examples=["ABC-1234"])]

    at_limits: list[dict[str, Any]] = [
        {"type": "string", "pattern": "a" * MAX_PATTERN_CHARS},
        nested(MAX_DEPTH),
        wide(MAX_PROPERTIES),
        {"enum": list(range(MAX_NODES - 2))},
        Shipping.model_json_schema(),
    ]
    for schema in at_limits:
        resp = await client.post("/api/tasks", json=body(response_schema=schema))
        assert resp.status_code == 201, resp.text[:300]
    made = await client.post(
        "/api/tasks",
        json=body(
            payload_schema=Shipping.model_json_schema(),
            payload={
                "zip_code": "94103-1234",
                "phone": "+1 (415) 555-0100",
                "email": "a@b.io",
                "sku": "ABC-1234",
            },
            response_schema=Shipping.model_json_schema(),
        ),
    )
    assert made.status_code == 201, made.text
    task_id = made.json()["id"]
    wrong = {"zip_code": "941", "phone": "+1 (415) 555-0100", "email": "a@b.io", "sku": "abc"}
    resp = await client.post(f"/api/tasks/{task_id}/complete", json={"response": wrong})
    assert resp.status_code == 422, resp.text
    by_loc = {tuple(d["loc"]): d["msg"] for d in resp.json()["details"]}
    assert by_loc == {
        ("response", "zip_code"): "Not in the expected format: US ZIP.",
        ("response", "sku"): "Not a valid Sku (for example: ABC-1234).",  # pydantic's title
    }
    right = {**wrong, "zip_code": "94103", "sku": "ABC-1234"}
    done = await client.post(f"/api/tasks/{task_id}/complete", json={"response": right})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"


async def test_pattern_errors_say_what_is_expected(client: httpx.AsyncClient) -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "$defs": {"code": {"type": "string", "pattern": "^[A-Z]{2}$"}},
        "properties": {
            "zip": {
                "type": "string",
                "pattern": r"^\d{5}$",
                "description": "Five-digit ZIP code.",
                "examples": ["94103"],
            },
            "country": {"$ref": "#/$defs/code", "title": "Country code"},
            "tags": {
                "type": "array",
                "description": "lower-case words",
                "items": {"type": "string", "pattern": "^[a-z]+$"},
            },
            "bare": {"type": "string", "pattern": "^x+$"},
        },
    }
    made = await client.post("/api/tasks", json=body(response_schema=schema))
    assert made.status_code == 201, made.text
    answer = {"zip": "9410", "country": "usa", "tags": ["ok", "Not Ok"], "bare": "y"}
    resp = await client.post(f"/api/tasks/{made.json()['id']}/complete", json={"response": answer})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "SCHEMA_VALIDATION_FAILED"
    by_loc = {tuple(d["loc"]): d["msg"] for d in resp.json()["details"]}
    assert by_loc == {
        ("response", "zip"): (
            "Not in the expected format: Five-digit ZIP code (for example: 94103)."
        ),
        ("response", "country"): "Not a valid Country code.",
        ("response", "tags", 1): "Not in the expected format: lower-case words.",
        ("response", "bare"): "Not in the expected format.",
    }
    assert all(set(d) == {"loc", "msg"} for d in resp.json()["details"])
    # The agent's own payload errors may show the pattern: its developer wrote it.
    bare = {"type": "string", "pattern": "^x+$"}
    bad = await client.post(
        "/api/tasks",
        json=body(payload_schema={"properties": {"b": bare}}, payload={"b": "y"}),
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["details"] == [
        {"loc": ["payload", "b"], "msg": "Does not match the pattern '^x+$'."}
    ]


# -- the budget, against real workers ----------------------------------------------------


def slow_schema(branches: int) -> dict[str, Any]:
    patterns = [{"pattern": f"[a-z]{{3}}\\d{{2}}-{i}$"} for i in range(branches)]
    return {"type": "array", "items": {"anyOf": [*patterns, {"type": "string"}]}}


SLOW_DOC = [f"abcdefghijklmn{k:06d}" for k in range(40_000)]  # ~3.5 s against 999 branches


class LoopLag:
    """How long this event loop was held by this process's own work, at worst, while it
    runs: for each 5 ms sleep, how late it woke, counting only the CPU time this process
    ran meanwhile (its loop, or a thread holding the GIL), not waits for a core."""

    def __init__(self) -> None:
        self.worst_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            started, cpu = time.perf_counter(), time.process_time()
            await asyncio.sleep(0.005)
            late = time.perf_counter() - started - 0.005
            self.worst_ms = max(self.worst_ms, min(late, time.process_time() - cpu) * 1000)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        assert self.worst_ms < HEALTH_MS, f"the loop was held for {self.worst_ms:.1f} ms"


async def test_a_check_over_budget_is_422_and_the_loop_runs_on() -> None:
    cache = SchemaCache(budget=0.5)
    try:
        schema = slow_schema(999)
        async with LoopLag():
            started = time.perf_counter()
            with pytest.raises(ApiError) as raised:
                await cache.errors(schema, SLOW_DOC, which="payload")
            took = time.perf_counter() - started
        assert raised.value.status_code == 422
        assert raised.value.code == "SCHEMA_VALIDATION_TIMEOUT"
        assert "0.5 s" in raised.value.message
        assert took < 3.0, took
        # The stopped worker is replaced: the next check works.
        assert await cache.errors(schema, SLOW_DOC[:10], which="payload") == []
    finally:
        cache.close()


async def test_a_compile_over_budget_is_too_complex() -> None:
    cache = SchemaCache(budget=0.05)
    try:
        # Fills the node limit with distinct patterns: about half a second to compile.
        schema = {"anyOf": [{"pattern": f"[a-z]{{3}}\\d{{2}}-{i}$"} for i in range(6_000)]}
        async with LoopLag():
            with pytest.raises(ApiError) as raised:
                await cache.check_schema(schema, which="response_schema")
        assert raised.value.status_code == 400
        assert raised.value.code == "SCHEMA_TOO_COMPLEX"
        assert raised.value.message == (
            "Compiling response_schema took longer than 0.05 s; simplify the schema."
        )
    finally:
        cache.close()


async def test_no_free_worker_within_the_budget_is_503_busy() -> None:
    cache = SchemaCache(budget=0.5, workers=1)
    try:
        # No patterns: compiled here, so the one worker is not started yet. Whichever check
        # takes it first starts it, and its budget starts after that (~0.1 s), so the other
        # one's wait for a worker (also 0.5 s) surely ends first. ~4 s of work each.
        schema = {"type": "array", "items": {"anyOf": [{"const": i} for i in range(600)]}}
        document = [599] * 50_000
        outcomes = await asyncio.gather(
            cache.errors(schema, document, which="payload"),
            cache.errors(schema, document, which="payload"),
            return_exceptions=True,
        )
        codes = sorted(o.code for o in outcomes if isinstance(o, ApiError))
        assert codes == ["SCHEMA_VALIDATION_TIMEOUT", "SERVER_BUSY"], outcomes
        busy = next(o for o in outcomes if isinstance(o, ApiError) and o.status_code == 503)
        assert isinstance(busy, ApiError)
        assert busy.headers == {"Retry-After": "1"}
    finally:
        cache.close()


async def test_a_stored_schema_from_before_keeps_working_off_the_loop() -> None:
    """A task created before patterns had to be linear can still be answered."""
    cache = SchemaCache()
    try:
        schema = {"type": "array", "items": {"type": "string", "pattern": EVIL}}
        strings = ["a" * (24 + i % 7) + "b" for i in range(1_000)]
        async with LoopLag():
            problems = await cache.errors(schema, strings, which="response", stored=True)
        assert problems, "strings the engine gives up on are reported, not passed"
        assert problems[0]["msg"].startswith("Could not be checked")
        assert await cache.errors(schema, ["aa"], which="response", stored=True) == []
        # Known from a stored task, it is still refused as a client's new schema.
        with pytest.raises(ApiError) as raised:
            await cache.check_schema(schema, which="payload_schema")
        assert raised.value.code == "UNSUPPORTED_PATTERN"
    finally:
        cache.close()
