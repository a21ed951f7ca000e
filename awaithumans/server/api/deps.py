"""FastAPI dependencies: the server context and the caller's principal."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, TypeAlias

from fastapi import Depends, Request
from fastapi.responses import Response

from awaithumans.core._codes import ErrorCode
from awaithumans.server.auth import SESSION_COOKIE, Credentials
from awaithumans.server.context import ServerContext
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal


async def get_ctx(request: Request) -> ServerContext:
    # async on purpose: FastAPI runs a plain-def dependency in a worker thread, a hop that
    # cost every request (and every idle re-poll) measurable CPU.
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


def credentials(request: Request) -> Credentials:
    """What the request presents to the authenticator."""
    headers = request.headers
    return Credentials(
        authorization=headers.get("authorization"),
        session_cookie=request.cookies.get(SESSION_COOKIE),
        method=request.method,
        origin=headers.get("origin"),
        host=headers.get("host", ""),
    )


async def optional_principal(request: Request, ctx: Ctx) -> Principal | None:
    found = await ctx.auth.authenticate(credentials(request))
    if found is None:
        return None
    if found.session_id is not None:
        request.state.session_id = found.session_id
    return found.principal


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise ApiError(
            401,
            ErrorCode.UNAUTHORIZED,
            "Sign in, or send 'Authorization: Bearer <token>' (an agent key or the admin token).",
        )
    return principal


async def require_human(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if not principal.can_answer:
        raise ApiError(
            403, ErrorCode.FORBIDDEN, "Agent keys may create and read tasks, not answer them."
        )
    return principal


async def require_operator(
    principal: Annotated[Principal, Depends(require_principal)],
) -> Principal:
    if not principal.is_operator:
        raise ApiError(403, ErrorCode.FORBIDDEN, "Only operators may do this.")
    return principal


AnyPrincipal = Annotated[Principal, Depends(require_principal)]
Human = Annotated[Principal, Depends(require_human)]
Operator = Annotated[Principal, Depends(require_operator)]


def json_response(
    body: str, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A pre-serialised JSON body (pydantic's Rust serializer; skips a second validation)."""
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


# JSON nested deeper than this is refused up front: pydantic stops serialising at about 255
# levels (a 500 on the way out), and no real payload or schema comes near it.
MAX_JSON_DEPTH = 100

# Text no backend can store: PostgreSQL refuses U+0000 in text and jsonb, and an unpaired
# surrogate has no UTF-8 encoding at all. SQLite would take the former, so refusing it
# everywhere keeps the two backends answering alike.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")

_JSON_TYPES = ("application/json", "+json")


def _bad_text(loc: list[Any]) -> ApiError:
    msg = "contains U+0000 or an unpaired surrogate, which cannot be stored"
    where = ".".join(str(p) for p in loc) or "body"
    return ApiError(
        422,
        ErrorCode.VALIDATION_ERROR,
        f"Invalid request: {where}: {msg}",
        details=[{"loc": loc, "msg": msg, "type": "string_unstorable"}],
    )


# A node of a parsed body while walking it: (value, depth, key in parent, parent entry).
_Entry: TypeAlias = tuple[Any, int, Any, "_Entry | None"]


def _loc(entry: _Entry) -> list[Any]:
    loc: list[Any] = []
    at: _Entry | None = entry
    while at is not None and at[3] is not None:
        loc.append(at[2])
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
            # Python's parser accepts NaN and Infinity; JSON (and every column) does not.
            if not math.isfinite(node):
                return ApiError(
                    400,
                    ErrorCode.INVALID_JSON,
                    "The request body is not valid JSON (NaN or Infinity).",
                )
        elif isinstance(node, dict):
            for key, child in node.items():
                if _UNSTORABLE.search(key):
                    return _bad_text([*_loc(entry), key])
                stack.append((child, depth + 1, key, entry))
        elif isinstance(node, list):
            stack.extend((child, depth + 1, i, entry) for i, child in enumerate(node))
    return None


def _plainly_fine(raw: bytes) -> bool:
    """A cheap look at the raw bytes that clears nearly every real body without a walk.

    Unstorable text can only arrive as a backslash-u escape (a raw NUL or a lone surrogate is not
    valid JSON or UTF-8), non-finite numbers only as those literals, and a body with at most
    ``MAX_JSON_DEPTH`` brackets in all cannot nest deeper than that.
    """
    return (
        b"\\u" not in raw
        and b"NaN" not in raw
        and b"Infinity" not in raw
        and raw.count(b"{") + raw.count(b"[") <= MAX_JSON_DEPTH
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
    if not raw or _plainly_fine(raw):
        return
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        # Only reachable for a route that takes no body: one that does has already
        # refused it as invalid JSON.
        return
    problem = _json_problem(body)
    if problem is not None:
        raise problem
