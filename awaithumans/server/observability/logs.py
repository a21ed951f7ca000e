"""Structured logs: ``AWAITHUMANS_LOG_FORMAT=json`` makes every line one JSON object.

A line carries ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger`` and
``message``; within a request also ``request_id`` (the proxy's ``X-Request-ID`` when it
sends a sane one, else a new one, echoed in the response) and ``task_id`` (when the request
names a task); under an OpenTelemetry span ``trace_id`` and ``span_id``; uvicorn's access
lines add ``client``, ``method``, ``path``, ``status``; an exception its traceback, inside
the one line. Whatever a call site passes in ``extra=`` is kept too.

The default (``text``) stays uvicorn's own configuration: nothing here is installed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The request being served (set by :class:`RequestContext`).
REQUEST_ID: ContextVar[str | None] = ContextVar("awaithumans_request_id", default=None)
#: The task it is about, when its path or query names one.
TASK_ID: ContextVar[str | None] = ContextVar("awaithumans_task_id", default=None)

# What a LogRecord always has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}
# A proxy's request id is kept only when it cannot smuggle anything into a log line.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
_TASK_ID_IN = re.compile(rb"tsk_[0-9a-f]{24}")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        task_id = TASK_ID.get()
        if task_id is not None:
            entry["task_id"] = task_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            _access_fields(entry, record.args)
        _trace_fields(entry)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def _access_fields(entry: dict[str, Any], args: tuple[Any, ...]) -> None:
    # uvicorn logs an access line as (client, method, path with query, HTTP version, status).
    if len(args) == 5:
        entry["client"], entry["method"], entry["path"], _, entry["status"] = args


def _trace_fields(entry: dict[str, Any]) -> None:
    # Only where OpenTelemetry is loaded (tracing on): no import, no cost otherwise.
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        entry["trace_id"] = format(context.trace_id, "032x")
        entry["span_id"] = format(context.span_id, "016x")


def uvicorn_log_config(log_format: str, level: str) -> dict[str, Any] | None:
    """The ``log_config`` to hand uvicorn: None keeps uvicorn's default (text).

    For ``json``, uvicorn's loggers, ours (at ``level``) and the root logger (warnings of
    the libraries) all write JSON lines to stdout, one stream for a log shipper to read.
    """
    if log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    formatter = {"()": f"{__name__}.JsonFormatter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # uvicorn sets use_colors on these two names when --use-colors is given.
        "formatters": {"json": formatter, "default": formatter, "access": formatter},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "awaithumans": {"handlers": ["json"], "level": level.upper(), "propagate": False},
            # What the server prints at start (its URL, the setup link) is always said.
            BANNER_LOGGER: {"level": "INFO"},
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    }


#: The logger the start-up banner's lines go to in JSON mode.
BANNER_LOGGER = "awaithumans.server.banner"


class _LinesToLog(io.TextIOBase):
    """A text stream that logs each complete line written to it."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._logger.info(line.strip())
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            self._logger.info(self._pending.strip())
        self._pending = ""


@contextlib.contextmanager
def printed_as_logs(log_format: str) -> Iterator[None]:
    """In JSON mode, turn what is printed meanwhile into log lines, so stdout stays JSON.

    The start-up banner (URL, database, setup link) is printed for people; a log shipper
    reading JSON lines would choke on it.
    """
    if log_format != "json":
        yield
        return
    stream = _LinesToLog(logging.getLogger(BANNER_LOGGER))
    with contextlib.redirect_stdout(stream):
        try:
            yield
        finally:
            stream.flush()


class RequestContext:
    """Sets :data:`REQUEST_ID` and :data:`TASK_ID` for everything a request logs.

    Installed only with JSON logs: a text log has nowhere to put them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        found = _TASK_ID_IN.search(scope.get("raw_path") or b"") or _TASK_ID_IN.search(
            scope.get("query_string") or b""
        )
        request_token = REQUEST_ID.set(request_id)
        task_token = TASK_ID.set(found.group().decode() if found else None)
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            TASK_ID.reset(task_token)
            REQUEST_ID.reset(request_token)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _SANE_REQUEST_ID.fullmatch(value):
            return str(value.decode())
    return secrets.token_hex(8)
