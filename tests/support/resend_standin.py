"""A stand-in for Resend's HTTP API on 127.0.0.1: ``POST /emails``, as the official SDK calls it.

The email channel sends through the ``resend`` package, whose functions read module globals:
``resend.api_key`` and ``resend.api_url`` (the latter taken from ``RESEND_API_URL`` once, when
``resend`` is first imported; set the attribute, or the variable before that import). Pointed
at :attr:`ResendStandIn.url`, the SDK's own HTTP clients (``requests`` for ``Emails.send``,
``httpx`` for ``Emails.send_async``) talk to this server, so the request the channel builds,
the headers the SDK adds and the way the SDK turns replies into exceptions are all exercised.

The stand-in answers like Resend does: ``{"id": ...}`` for an email accepted; for an error,
the status with ``{"statusCode", "name", "message"}`` (the SDK picks its exception class from
status and ``name``): 401 ``missing_api_key`` without a key, 403 ``invalid_api_key`` for a
wrong one, 422 ``missing_required_field`` without ``from``, ``to`` or ``subject``, and 409
for an ``Idempotency-Key`` reused with another body (the same key and body get the first
answer again, and no second email). ``faults`` queues replies for the next requests (a 429
``rate_limit_exceeded`` with Resend's rate-limit headers, a 500), see :func:`resend_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "re_standin_key"

#: Resend's messages for the errors a test is likely to queue, by ``name``.
MESSAGES = {
    "rate_limit_exceeded": "Too many requests. You can only make 2 requests per second. See "
    "rate limit response headers for more information. Or contact support to increase rate "
    "limit.",
    "daily_quota_exceeded": "You have reached your daily email sending quota.",
    "monthly_quota_exceeded": "You have reached your monthly email sending quota.",
    "application_error": "An unexpected error occurred.",
    "internal_server_error": "An unexpected error occurred.",
    "validation_error": "Invalid `to` field. The email address needs to follow the "
    "`email@example.com` or `Name <email@example.com>` format.",
    "missing_api_key": "Missing API key in the authorization header. Include the following "
    "header `Authorization: Bearer YOUR_API_KEY` in the request.",
    "invalid_api_key": "API key is invalid",
    "invalid_idempotent_request": "Same idempotency key used with a different request payload.",
    "concurrent_idempotent_requests": "Same idempotency key used while original request is "
    "still in progress.",
}

Fault = tuple[int, dict[str, Any]]


def resend_error(status: int, name: str, message: str | None = None) -> Fault:
    """A reply Resend gives for an error: the status and its JSON body."""
    text = message if message is not None else MESSAGES.get(name, name.replace("_", " "))
    return status, {"statusCode": status, "name": name, "message": text}


@dataclass
class ResendCall:
    """One request that reached the stand-in, whatever it was answered."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]  # lower-case names
    status: int
    reply: dict[str, Any]
    at: float  # time.monotonic()


@dataclass
class ResendStandIn:
    """Resend's ``POST /emails`` on one local port (see the module docstring)."""

    port: int = 0
    api_key: str = API_KEY
    #: The JSON bodies of the emails accepted, oldest first.
    emails: list[dict[str, Any]] = field(default_factory=list)
    #: The id answered for each of ``emails``, in the same order.
    ids: list[str] = field(default_factory=list)
    #: Every request, accepted or not.
    calls: list[ResendCall] = field(default_factory=list)
    #: Replies for the next requests, one popped per request before anything else is
    #: looked at; build them with :func:`resend_error`.
    faults: deque[Fault] = field(default_factory=deque)
    #: Seconds every request takes before it answers (a slow Resend).
    latency: float = 0.0
    _idempotent: dict[str, tuple[Any, str]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)
    _open: set[socket.socket] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    # -- running ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """What ``resend.api_url`` (or ``RESEND_API_URL``) is set to: no trailing slash, as
        the SDK appends paths (``/emails``) to it as they are."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ResendStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def setup(self) -> None:
                super().setup()
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with standin._lock:
                    standin._open.add(self.request)

            def finish(self) -> None:
                with standin._lock:
                    standin._open.discard(self.request)
                super().finish()

            def handle(self) -> None:
                # A client that hangs up mid-reply (one that timed out) is not an error.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()

            def do_GET(self) -> None:
                self._handle(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self._handle(self.rfile.read(length))

            def _handle(self, raw: bytes) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, reply, extra = standin._call(self.command, self.path, raw, headers)
                payload = json.dumps(reply).encode()
                self.send_response(status)
                # The SDK raises unless "application/json" is in the content type.
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # A short poll: shutdown() waits up to that long, at every test's end.
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Kept-alive connections too, as a Resend that went away would drop them.
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def __enter__(self) -> ResendStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- looking at what came -----------------------------------------------------------

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` emails were accepted; all of them so far.

        Blocks the calling thread: from a test whose code under test sends on the same event
        loop, use :meth:`wait_for_async`.
        """
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.emails) >= count, timeout):
                got = [(e.get("to"), e.get("subject")) for e in self.emails]
                refused = [(c.status, c.reply.get("name")) for c in self.calls if c.status != 200]
                raise AssertionError(
                    f"expected {count} email(s) within {timeout}s, got {len(got)}: {got}"
                    f" (requests refused: {refused})"
                )
            return list(self.emails)

    async def wait_for_async(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """:meth:`wait_for` off the event loop, so senders on that loop go on meanwhile."""
        return await asyncio.to_thread(self.wait_for, count, timeout)

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> list[ResendCall]:
        """Block until at least ``count`` requests came (refused ones too)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(
                    f"expected {count} request(s) within {timeout}s, got {len(self.calls)}"
                )
            return list(self.calls)

    # -- the API ------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, raw: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.latency:
            time.sleep(self.latency)  # this request's own thread: other requests go on
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._arrived:
            status, reply, extra = self._answer(method, path, body, headers)
            self.calls.append(
                ResendCall(method, path, body, headers, status, reply, time.monotonic())
            )
            self._arrived.notify_all()
        return status, reply, extra

    def _answer(
        self, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The reply to one request; called with the lock held."""
        if self.faults:
            status, reply = self.faults.popleft()
            extra = {}
            if status == 429:
                # What Resend sends with a 429; the SDK hands them over as error.headers.
                extra = {
                    "ratelimit-limit": "2",
                    "ratelimit-remaining": "0",
                    "ratelimit-reset": "1",
                    "retry-after": "1",
                }
            return status, reply, extra
        if path.split("?")[0].rstrip("/") != "/emails":
            return (*resend_error(404, "not_found", "The requested endpoint does not exist."), {})
        if method != "POST":
            message = "Method is not allowed for the requested path."
            return (*resend_error(405, "method_not_allowed", message), {})
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            return (*resend_error(401, "missing_api_key"), {})
        if auth.removeprefix("Bearer ") != self.api_key:
            return (*resend_error(403, "invalid_api_key"), {})
        if not isinstance(body, dict):
            return (*resend_error(422, "validation_error", "Invalid JSON body."), {})
        for required in ("from", "to", "subject"):
            if not body.get(required) and not (required == "subject" and body.get("template")):
                message = f"Missing `{required}` field."
                return (*resend_error(422, "missing_required_field", message), {})
        key = headers.get("idempotency-key")
        if key is not None and key in self._idempotent:
            first_body, first_id = self._idempotent[key]
            if first_body != body:
                return (*resend_error(409, "invalid_idempotent_request"), {})
            return 200, {"id": first_id}, {}
        email_id = str(uuid.uuid4())
        if key is not None:
            self._idempotent[key] = (body, email_id)
        self.emails.append(body)
        self.ids.append(email_id)
        return 200, {"id": email_id}, {}
