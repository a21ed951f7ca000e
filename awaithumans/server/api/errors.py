"""Error responses: every exception a request can raise becomes the one error body.

``{"error": CODE, "message": ..., "details"?: [...]}``; nothing about the server's insides
(tracebacks, SQL) ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import ErrorBody
from awaithumans.server.api.json_guard import MAX_JSON_DEPTH
from awaithumans.server.errors import ApiError

log = logging.getLogger("awaithumans.server")

#: Renders the page a person gets for a dashboard address that does not exist.
PageRenderer = Callable[[Request], Response]


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status_code, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for error statuses: all share the one body shape.

    Declaring 422 also replaces FastAPI's default ``HTTPValidationError`` schema, which is
    not what this API sends.
    """
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


_DESCRIPTIONS = {
    400: "Malformed request (invalid JSON, schema, route, cursor, ...)",
    401: "Missing or invalid credentials",
    403: "Not allowed for this credential",
    404: "No such resource (or not visible to this credential)",
    409: "Conflicts with the current state",
    413: "Request body over the size limit",
    422: "Validation failed",
    429: "Too many attempts",
    503: "A dependency (the database) is unavailable",
}


_HTTP_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMITED,
}


def _clean_loc(loc: Any) -> list[Any]:
    return [p for p in loc if p != "body"] if isinstance(loc, list | tuple) else []


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _wants_page(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/static/", "/ui/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def install_error_handlers(app: FastAPI, *, not_found_page: PageRenderer | None = None) -> None:
    """Map every exception type onto the one error shape.

    Args:
        app: The application.
        not_found_page: Answers a browser asking for a page that does not exist (the
            dashboard's 404 page); JSON clients always get the error body.
    """

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> Response:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(req: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(
                400, ErrorCode.INVALID_JSON, "The request body is not valid JSON."
            )
        details = [
            {"loc": _clean_loc(e.get("loc")), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in errors
        ][:50]
        # A timeout given but out of range (or not a number) has its own code; a request
        # that simply lacks one is an ordinary validation error.
        if any(e["loc"] == ["timeout_seconds"] and e["type"] != "missing" for e in details):
            return error_response(
                422,
                ErrorCode.TIMEOUT_OUT_OF_RANGE,
                "timeout_seconds must be an integer between 60 and 2592000.",
                details,
            )
        first = details[0] if details else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"]) or "request"
        message = f"Invalid request: {where}: {first['msg']}"
        if not first["loc"] and not _is_json(req):
            # The body was not read as JSON at all (a form, text, no Content-Type), so the
            # model saw bytes: say what to send rather than what pydantic expected.
            message = "Invalid request: send the body as JSON (Content-Type: application/json)."
        return error_response(422, ErrorCode.VALIDATION_ERROR, message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and not_found_page is not None and _wants_page(req):
            # A person who mistyped a dashboard address gets a page, not a JSON body.
            return not_found_page(req)
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            # FastAPI's generic "error parsing the body", for JSON nested past the parser's
            # recursion limit (about 1,000 levels; the guard refuses more than 100 anyway).
            return error_response(
                400,
                ErrorCode.INVALID_JSON,
                "The request body is nested too deeply to read"
                f" (JSON deeper than {MAX_JSON_DEPTH} levels is refused).",
            )
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # The same for bytes that are not UTF-8 (a UnicodeDecodeError) or an integer
            # of more digits than Python converts.
            return error_response(
                400, ErrorCode.INVALID_JSON, "The request body is not valid JSON."
            )
        code = _HTTP_CODES.get(exc.status_code, ErrorCode.HTTP_ERROR)
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
        return error_response(
            exc.status_code, code, message, headers=dict(exc.headers) if exc.headers else None
        )

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, ErrorCode.INTERNAL_ERROR, "The server hit an unexpected error.")
