"""JSON Schema checks for payloads and responses, compiled once per distinct schema.

Agents send the same few schemas thousands of times; compiling a validator is far dearer
than running one, so validators are cached by the schema's canonical hash.

No check may hold the event loop: ``jsonschema_rs`` keeps the GIL while it works, so a
thread would not help. What is cheap for certain runs here, inline: a schema of up to
:data:`INLINE_MEASURE_CHARS` is measured in a few ms, one without patterns of up to
:data:`INLINE_COMPILE_NODES` values compiles in under 2 ms, and a
document whose cost (:func:`schema_shape.weight` times :attr:`Shape.cost`) is under
:data:`INLINE_CHECK` validates in a few milliseconds at worst, which beats the round trip
to a worker. Everything else (first compiles of schemas with patterns, big schemas, big or
failing documents) goes to a worker process (:mod:`schema_worker`) with a time budget.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import canonical_json
from awaithumans.server.errors import ApiError
from awaithumans.server.services import schema_rules, schema_shape
from awaithumans.server.services.schema_rules import Problem
from awaithumans.server.services.schema_shape import Shape, TooComplex
from awaithumans.server.services.schema_worker import Busy, Overdue, WorkerPool

_MAX_CACHED = 512
#: Longest schema (canonical JSON characters) measured inline: about 5 ms at worst, when
#: its $refs must be followed. A longer one is measured by a worker, with its compile.
INLINE_MEASURE_CHARS = 32_000
#: Largest schema without patterns compiled inline (2,000 values: 1.8 ms measured).
INLINE_COMPILE_NODES = 2_000
#: A schema whose first compile (in a worker) took at most this many ms is compiled again
#: here, so that its small documents are then checked inline.
INLINE_COMPILE_MS = 2.0
#: Cost (document weight x schema cost) checked inline: 7 ms at worst measured (600
#: ``const`` branches of an ``anyOf``), about 0.1 ms for a typical form.
INLINE_CHECK = 100_000
#: Cost up to which a failing document's problems are listed inline: each listed problem
#: costs ~16 µs, and there are fewer problems than units of cost.
INLINE_LIST = 500
#: Cost up to which a worker lists every problem (or else reports the first).
WORKER_LIST = 100_000
#: Seconds a worker may take on one compile or check, and a request may wait for one.
BUDGET_SECONDS = 2.0

_CODES = {
    "invalid": ErrorCode.INVALID_SCHEMA,
    "unsupported_pattern": ErrorCode.UNSUPPORTED_PATTERN,
    "too_complex": ErrorCode.SCHEMA_TOO_COMPLEX,
}


@dataclass(slots=True)
class _Entry:
    shape: Shape
    #: The schema passed the complexity limits (a stored one may predate them).
    within_limits: bool
    #: Its patterns need backtracking: a stored schema from before they had to be linear,
    #: only ever run in a worker.
    backtracking: bool
    #: A validator compiled in this process, for schemas cheap to compile and to run.
    local: Any | None


class SchemaCache:
    """LRU of compiled validators keyed by schema hash, and the workers for big checks.

    Args:
        budget: Seconds one worker check (or the wait for a worker) may take.
        workers: Worker processes at most.
    """

    def __init__(self, *, budget: float = BUDGET_SECONDS, workers: int = 2) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._budget = budget
        self._pool = WorkerPool(workers)

    async def check_schema(self, schema: dict[str, Any], *, which: str) -> None:
        """Refuse a client's schema that is invalid, too complex, or needs backtracking.

        Raises:
            ApiError: 400 ``INVALID_SCHEMA``, ``SCHEMA_TOO_COMPLEX``, ``UNSUPPORTED_PATTERN``;
                503 ``SERVER_BUSY``.
        """
        await self._entry(schema, which, stored=False)

    async def errors(
        self, schema: dict[str, Any], instance: Any, *, which: str, stored: bool = False
    ) -> list[dict[str, Any]]:
        """Every way ``instance`` breaks ``schema``, as field errors (empty when valid).

        Args:
            which: The document's name, first in each error's ``loc``.
            stored: The schema is a task's, accepted at its creation: no limits apply now,
                and one from before patterns had to be linear still works.

        Raises:
            ApiError: What :meth:`check_schema` raises (a client's schema only), or 422
                ``SCHEMA_VALIDATION_TIMEOUT`` when checking took longer than the budget.
        """
        name = f"{which}_schema"
        key, text, entry = await self._entry(schema, name, stored=stored)
        per_unit = max(entry.shape.cost, 1)
        cost = schema_shape.weight(instance, WORKER_LIST // per_unit + 1) * per_unit
        if entry.local is not None and not entry.shape.opaque and cost <= INLINE_CHECK:
            if entry.local.is_valid(instance):
                return []
            if cost <= INLINE_LIST:
                return schema_rules.field_errors(
                    entry.local, schema, instance, which, list_all=True
                )
        request = {
            "key": key,
            "name": name,
            "legacy": stored,
            "instance": instance,
            "which": which,
            "list_all": cost <= WORKER_LIST,
        }
        reply = await self._remote(request, text, f"Checking {which} against {name}")
        errors: list[dict[str, Any]] = reply["errors"]
        return errors

    async def _entry(self, schema: Any, name: str, *, stored: bool) -> tuple[str, str, _Entry]:
        text = canonical_json(schema)
        key = hashlib.sha256(text.encode()).hexdigest()
        entry = self._entries.get(key)
        if entry is not None and (stored or (entry.within_limits and not entry.backtracking)):
            self._entries.move_to_end(key)
            return key, text, entry
        # New here, or so far known only as a task's stored schema (which may predate the
        # limits, or need backtracking): measure and compile it now.
        request: dict[str, Any] = {"key": key, "name": name, "legacy": stored}
        local = None
        backtracking = False
        if len(text) > INLINE_MEASURE_CHARS:
            reply = await self._remote({**request, "measure": True}, text, f"Compiling {name}")
            shape, backtracking = Shape(*reply["shape"]), reply["backtracking"]
        else:
            shape = _measured(schema, name, limits=not stored)
            if shape.patterns == 0 and shape.nodes <= INLINE_COMPILE_NODES:
                local = _compiled(schema, name, legacy=stored)
            else:
                reply = await self._remote(request, text, f"Compiling {name}")
                backtracking = reply["backtracking"]
                if reply["ms"] <= INLINE_COMPILE_MS and not backtracking:
                    local = _compiled(schema, name, legacy=False)
        entry = _Entry(shape, not stored, backtracking, local)
        self._entries[key] = entry
        if len(self._entries) > _MAX_CACHED:
            self._entries.popitem(last=False)
        return key, text, entry

    async def _remote(self, request: dict[str, Any], text: str, doing: str) -> dict[str, Any]:
        try:
            reply = await self._pool.call(request, text, self._budget)
        except Busy:
            raise ApiError(
                503,
                ErrorCode.SERVER_BUSY,
                "The server is busy checking other large documents; retry shortly.",
                headers={"Retry-After": "1"},
            ) from None
        except Overdue:
            if "instance" in request:
                raise ApiError(
                    422,
                    ErrorCode.SCHEMA_VALIDATION_TIMEOUT,
                    f"{doing} took longer than {self._budget:g} s; send a smaller document"
                    " or a simpler schema.",
                ) from None
            raise ApiError(
                400,
                ErrorCode.SCHEMA_TOO_COMPLEX,
                f"{doing} took longer than {self._budget:g} s; simplify the schema.",
            ) from None
        if "problem" in reply:
            raise _refusal(Problem(reply["problem"], reply["message"]), request["name"])
        return reply

    def close(self) -> None:
        """Stop the worker processes (the server is shutting down)."""
        self._pool.close()


def _measured(schema: Any, name: str, *, limits: bool) -> Shape:
    try:
        return schema_shape.measure(schema, name, limits=limits)
    except TooComplex as exc:
        raise ApiError(400, ErrorCode.SCHEMA_TOO_COMPLEX, str(exc)) from None


def _compiled(schema: Any, name: str, *, legacy: bool) -> Any:
    try:
        return schema_rules.compile_schema(schema, name, legacy=legacy)[0]
    except Problem as exc:
        raise _refusal(exc, name) from None


def _refusal(problem: Problem, name: str) -> ApiError:
    if problem.kind == "invalid":
        message = f"{name} is not a valid JSON Schema: {problem.message}"
    elif problem.kind == "unsupported_pattern":
        message = f"{name}: {problem.message}."
    else:
        message = problem.message
    return ApiError(400, _CODES[problem.kind], message)
