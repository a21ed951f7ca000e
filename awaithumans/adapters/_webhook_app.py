"""The ASGI plumbing shared by the adapters' webhook receivers (Temporal relay, LangGraph
resumer): read a bounded body, verify the Standard Webhooks signature, answer JSON.

Each receiver supplies only what happens to a verified event's ``data``; the status code it
answers with tells the server's delivery queue whether to retry.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
EventHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

# Webhook bodies are small; anything bigger is not ours.
MAX_BODY = 1_000_000


class Reply(Exception):
    """Answer the request with ``status`` and the JSON ``body`` (raised by handlers)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def webhook_app(webhook_secret: str, on_event: EventHandler) -> ASGIApp:
    """An ASGI app: ``POST`` a signed awaithumans webhook (any path), ``GET /healthz``.

    ``on_event`` gets the verified event's ``data`` object and returns the 200 body, or
    raises :class:`Reply` for any other answer.
    """
    verifier = Webhook(webhook_secret)

    async def handle(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        if method == "GET" and path.rstrip("/") == "/healthz":
            return {"ok": True}
        if method != "POST":
            raise Reply(405, {"error": "POST a webhook"})
        try:
            event = verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            raise Reply(401, {"error": f"bad signature: {exc}"}) from None
        except ValueError:  # signed but not JSON
            raise Reply(400, {"error": "body is not JSON"}) from None
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise Reply(400, {"error": "expected an object with a 'data' object"})
        return await on_event(event["data"])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await _read_body(receive)
            status, reply = 200, await handle(scope["method"], scope["path"], body, headers)
        except Reply as r:
            status, reply = r.status, r.body
        await _respond(send, status, reply)

    return app


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise Reply(413, {"error": "body too large"})
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
