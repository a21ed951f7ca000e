"""What the three relays share: the words for what became of an event, and the ASGI app.

A relay takes the server's signed webhook for a task that ended and hands the outcome to
the run that waits for it: a Temporal signal, a LangGraph ``Command(resume=...)``, a Prefect
resume. Each adapter supplies one thing, ``resume_from_event(engine, data) -> ResumeResult``;
the rest is here, so all three answer the server the same way:

=====================================  ======  =============================================
what happened                          status  what the server's delivery queue does
=====================================  ======  =============================================
resumed, already resumed, no run waits  200     done
the engine refused the outcome for good 410     gives up (retrying cannot help)
:class:`NotOurEventError`               400     retries a while, then gives up
:class:`RetryLaterError`                503     delivers again later
bad signature                           401     retries a while, then gives up
anything else                           500     delivers again later
=====================================  ======  =============================================
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from awaithumans.core._codes import ErrorCode
from awaithumans.core._errors import NotOurEventError, RetryLaterError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("awaithumans.relay")

# Webhook bodies are small; anything bigger is not ours.
MAX_BODY = 1_000_000


class Resumed(StrEnum):
    """What became of one task outcome handed to the run that waits for it."""

    #: The run has the outcome (signalled, resumed).
    RESUMED = "resumed"
    #: The run went past this wait already: a duplicate or late event.
    ALREADY = "already_resumed"
    #: No run waits for this task here: it ended, is unknown, or lives elsewhere.
    NOT_WAITING = "not_waiting"
    #: The engine refused the outcome for good (a pause that expired, an input it rejects).
    REFUSED = "refused"


@dataclass(frozen=True)
class ResumeResult:
    """The answer of every adapter's ``resume_from_event``."""

    outcome: Resumed
    #: Why, in words: the engine's reason for a refusal, what was not found, ...
    reason: str | None = None

    @property
    def resumed(self) -> bool:
        return self.outcome is Resumed.RESUMED

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"resumed": self.resumed, "outcome": self.outcome.value}
        if self.reason:
            body["reason"] = self.reason
        return body


def webhook_data(event: Any) -> dict[str, Any]:
    """The event's ``data`` object, given the whole webhook body or just its ``data``.

    Raises:
        NotOurEventError: Neither shape.
    """
    if isinstance(event, dict) and isinstance(event.get("data"), dict) and "type" in event:
        event = event["data"]
    if not isinstance(event, dict):
        raise NotOurEventError("expected the webhook's data object")
    return event


Resume = Callable[[dict[str, Any]], Awaitable[ResumeResult]]


class _Reply(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def _error(code: str, message: str) -> dict[str, Any]:
    # The server's own error shape, so one reader understands both.
    return {"error": code, "message": message}


def relay_asgi(webhook_secret: str, resume: Resume) -> ASGIApp:
    """An ASGI app: ``POST`` a signed awaithumans webhook (any path), ``GET /healthz``.

    ``resume`` gets the verified event's ``data`` object; its result or error becomes the
    reply (see the module's table).
    """
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    verifier = Webhook(webhook_secret)

    async def handle(method: str, path: str, body: bytes, headers: dict[str, str]) -> _Reply:
        if method == "GET" and path.rstrip("/") == "/healthz":
            return _Reply(200, {"ok": True})
        if method != "POST":
            return _Reply(405, _error(ErrorCode.METHOD_NOT_ALLOWED, "POST a webhook"))
        try:
            event = verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            return _Reply(401, _error(ErrorCode.INVALID_SIGNATURE, f"bad signature: {exc}"))
        except ValueError:  # signed but not JSON
            return _Reply(400, _error(ErrorCode.INVALID_JSON, "body is not JSON"))
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            return _Reply(400, _error(ErrorCode.NOT_OUR_EVENT, "expected a 'data' object"))
        data = event["data"]
        try:
            result = await resume(data)
        except NotOurEventError as exc:
            return _Reply(400, _error(exc.code, exc.message))
        except RetryLaterError as exc:
            return _Reply(503, _error(exc.code, exc.message))
        except Exception as exc:
            log.exception("resuming the run of task %s failed", data.get("task_id"))
            return _Reply(500, _error(ErrorCode.INTERNAL_ERROR, type(exc).__name__))
        if result.outcome is Resumed.REFUSED:
            log.warning("the engine refused task %s: %s", data.get("task_id"), result.reason)
            return _Reply(410, result.as_json())
        return _Reply(200, result.as_json())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await _read_body(receive)
        except _Reply as too_big:
            reply = too_big
        else:
            reply = await handle(scope["method"], scope["path"], body, headers)
        await _respond(send, reply.status, reply.body)

    return app


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _Reply(413, _error(ErrorCode.PAYLOAD_TOO_LARGE, "body too large"))
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
