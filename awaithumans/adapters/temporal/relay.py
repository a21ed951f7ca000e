"""The relay: the awaithumans server's signed webhooks in, Temporal signals out.

An ASGI app. For every verified ``task.*`` event it signals ``awaithumans.task_event`` to
the workflow named in ``data.task_metadata.temporal.workflow_id``. Status codes tell the
server's delivery queue what to do: 2xx done, 401/400 a bad request (the server retries
those too, but they will not get better), 503 try again later (Temporal unreachable).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from temporalio.client import Client

from awaithumans.adapters.temporal._signal import (
    NotATemporalEvent,
    TemporalUnavailable,
    signal_task_event,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("awaithumans.relay.temporal")

# Webhook bodies are small; anything bigger is not ours.
_MAX_BODY = 1_000_000


class _Reply(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def relay_app(client: Client | Callable[[], Awaitable[Client]], webhook_secret: str) -> ASGIApp:
    """Build the relay's ASGI app.

    Args:
        client: A connected Temporal client (its namespace is the one signalled), or an
            async factory called once at the first request, for servers that own the loop.
        webhook_secret: The ``whsec_...`` secret printed by ``awaithumans webhook-secret``.

    Returns:
        An ASGI application; ``POST`` any path with a webhook, ``GET /healthz`` to probe.
    """
    verifier = Webhook(webhook_secret)
    connected: list[Client] = [client] if isinstance(client, Client) else []

    async def temporal() -> Client:
        if not connected:
            assert not isinstance(client, Client)
            connected.append(await client())
        return connected[0]

    async def handle(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        if method == "GET" and path.rstrip("/") == "/healthz":
            return {"ok": True}
        if method != "POST":
            raise _Reply(405, {"error": "POST a webhook"})
        try:
            event = verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            raise _Reply(401, {"error": f"bad signature: {exc}"}) from None
        except ValueError:  # signed but not JSON
            raise _Reply(400, {"error": "body is not JSON"}) from None
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise _Reply(400, {"error": "expected an object with a 'data' object"})
        try:
            return await signal_task_event(await temporal(), event["data"])
        except NotATemporalEvent as exc:
            raise _Reply(400, {"error": str(exc)}) from None
        except TemporalUnavailable as exc:
            raise _Reply(503, {"error": f"temporal: {exc}"}) from None

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
        except _Reply as r:
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
        if size > _MAX_BODY:
            raise _Reply(413, {"error": "body too large"})
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
