"""The app-wide guard on request bodies: what no backend can store is a 4xx, never a 500.

``reject_unstorable`` runs before every route's own dependencies (``create_app``). It refuses
text with U+0000 or an unpaired surrogate, JSON nested deeper than ``MAX_JSON_DEPTH``, NaN,
Infinity and numbers past a double's range, and objects that repeat a key, in the path, the
query and a JSON body, in any encoding the parser reads.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeAlias

from fastapi import Request

from awaithumans.core._codes import ErrorCode
from awaithumans.server.errors import ApiError

# JSON nested deeper than this is refused up front: pydantic stops serialising at about 255
# levels (a 500 on the way out), and no real payload or schema comes near it.
MAX_JSON_DEPTH = 100

# Text no backend can store: PostgreSQL refuses U+0000 in text and jsonb, and an unpaired
# surrogate has no UTF-8 encoding at all. SQLite would take the former, so refusing it
# everywhere keeps the two backends answering alike.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")

_JSON_TYPES = ("application/json", "+json")


def _printable(part: Any) -> Any:
    """A key of the body, as it can be sent back: an unpaired surrogate has no UTF-8, so
    the error naming it would fail to encode; it is written as its escape instead."""
    if isinstance(part, str):
        return part.encode("utf-8", "backslashreplace").decode("utf-8")
    return part


def _bad_text(loc: list[Any]) -> ApiError:
    msg = "contains U+0000 or an unpaired surrogate, which cannot be stored"
    loc = [_printable(p) for p in loc]
    where = ".".join(str(p) for p in loc) or "body"
    return ApiError(
        422,
        ErrorCode.VALIDATION_ERROR,
        f"Invalid request: {where}: {msg}",
        details=[{"loc": loc, "msg": msg, "type": "string_unstorable"}],
    )


_NOT_FINITE = "NaN, Infinity or a number out of a double's range (about 1.8e308)"

# A node of a parsed body while walking it: (value, depth, key in parent, parent entry).
_Entry: TypeAlias = tuple[Any, int, Any, "_Entry | None"]


def _loc(entry: _Entry) -> list[Any]:
    loc: list[Any] = []
    at: _Entry | None = entry
    while at is not None and at[3] is not None:
        loc.append(_printable(at[2]))
        at = at[3]
    return loc[::-1]


def _json_problem(value: Any) -> ApiError | None:
    """The first thing in a parsed body that cannot be stored or sent back, if any.

    Iterative, so a deep document cannot exhaust the stack; the location of a problem is
    rebuilt from parent links only when there is one to report.
    """
    stack: list[_Entry] = [(value, 0, None, None)]
    while stack:
        entry = stack.pop()
        node, depth = entry[0], entry[1]
        if depth > MAX_JSON_DEPTH:
            loc = _loc(entry)
            msg = f"nested deeper than {MAX_JSON_DEPTH} levels"
            return ApiError(
                422,
                ErrorCode.VALIDATION_ERROR,
                f"Invalid request: {'.'.join(map(str, loc[:3]))}...: {msg}",
                details=[{"loc": loc, "msg": msg, "type": "json_too_deep"}],
            )
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                return _bad_text(_loc(entry))
        elif isinstance(node, float):
            # Python's parser accepts NaN and Infinity, and reads a number past a double's
            # range (1e999) as infinity; JSON (and every column) has no such values.
            if not math.isfinite(node):
                loc = _loc(entry)
                return ApiError(
                    400,
                    ErrorCode.INVALID_JSON,
                    f"The request body is not valid JSON: {'.'.join(map(str, loc))}:"
                    f" {_NOT_FINITE}.",
                    details=[{"loc": loc, "msg": _NOT_FINITE, "type": "number_not_finite"}],
                )
        elif isinstance(node, dict):
            for key, child in node.items():
                if _UNSTORABLE.search(key):
                    return _bad_text([*_loc(entry), key])
                stack.append((child, depth + 1, key, entry))
        elif isinstance(node, list):
            stack.extend((child, depth + 1, i, entry) for i, child in enumerate(node))
    return None


# An unpaired surrogate written straight in UTF-8 (ED A0..BF ..): Python's parser takes it.
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")


def _plainly_fine(raw: bytes) -> bool:
    """A cheap look at the raw bytes that clears nearly every real body without a walk.

    In a UTF-8 body, unstorable text arrives as a backslash-u escape or as a surrogate's
    UTF-8 bytes (a raw NUL is not valid JSON), and a body with at most ``MAX_JSON_DEPTH``
    brackets in all cannot nest deeper than that. A NUL byte means UTF-16 or UTF-32, which
    the parser also reads and these byte patterns do not see, so such a body is walked.
    (Non-finite numbers are caught while parsing: see ``_strict``.)
    """
    return (
        b"\\u" not in raw
        and b"\x00" not in raw
        and raw.count(b"{") + raw.count(b"[") <= MAX_JSON_DEPTH
        and _RAW_SURROGATE.search(raw) is None
    )


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


class _NotFinite(Exception):
    """NaN, Infinity, or a number no double holds (1e999, which Python reads as inf)."""


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFinite
    return number


def _no_constant(_name: str) -> Any:
    raise _NotFinite


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return found


def _duplicate_key(key: str) -> ApiError:
    # repr() escapes what could not be encoded; a long key is cut.
    shown = repr(key[:40]) + ("..." if len(key) > 40 else "")
    msg = f"the key {shown} appears twice in one object"
    return ApiError(
        400,
        ErrorCode.INVALID_JSON,
        f"The request body is not valid JSON: {msg}.",
        details=[{"loc": [], "msg": msg, "type": "duplicate_key"}],
    )


def _strict(raw: bytes) -> Any:
    """The body parsed again, seeing what a dict or a float would hide.

    The keys of each object before a dict keeps the last of a repeated one: {"task": "a",
    "task": "b"} would be read one way here and maybe another by a proxy or a client's own
    check. And each number's text, before 1e999 becomes infinity. About one more parse.
    """
    return json.loads(
        raw, object_pairs_hook=_unique_keys, parse_float=_finite, parse_constant=_no_constant
    )


def _not_finite(raw: bytes) -> ApiError:
    """The error for a body with a non-finite number, naming where it is when it can."""
    try:
        # Read as FastAPI does (NaN and inf kept); the walk finds the number (or another
        # problem first, which is as good a reason).
        problem = _json_problem(json.loads(raw))
    except (ValueError, RecursionError):
        problem = None
    return problem or ApiError(
        400,
        ErrorCode.INVALID_JSON,
        f"The request body is not valid JSON: {_NOT_FINITE}.",
    )


async def reject_unstorable(request: Request) -> None:
    """App-wide guard: refuse input that would otherwise fail deep inside, as a 500.

    Runs after FastAPI has parsed the body (so ``request.json()`` is its cached result) and
    before any handler or model sees it; covers path and query parameters too.
    """
    for where, items in (
        ("path", request.path_params.items()),
        ("query", request.query_params.multi_items()),
    ):
        for name, value in items:
            if isinstance(value, str) and _UNSTORABLE.search(value):
                raise _bad_text([where, name])
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not content_type.endswith(_JSON_TYPES):
        return
    raw = await request.body()
    if not raw:
        return
    try:
        body = _strict(raw)
    except _DuplicateKey as dup:
        raise _duplicate_key(dup.key) from None
    except _NotFinite:
        raise _not_finite(raw) from None
    except (ValueError, RecursionError):
        # Only reachable for a route that takes no body: one that does has already
        # refused it as invalid JSON.
        return
    if _plainly_fine(raw):
        return
    problem = _json_problem(body)
    if problem is not None:
        raise problem
