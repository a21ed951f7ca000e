"""The relay: the awaithumans server's signed webhooks in, Temporal signals out.

An ASGI app. For every verified ``task.*`` event it signals ``awaithumans.task_event`` to
the workflow named in ``data.task_metadata.temporal.workflow_id``. Status codes tell the
server's delivery queue what to do: 2xx done, 401/400 a bad request (the server retries
those too, but they will not get better), 503 try again later (Temporal unreachable).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client

from awaithumans.adapters._webhook_app import ASGIApp, Reply, webhook_app
from awaithumans.adapters.temporal._signal import (
    NotATemporalEvent,
    TemporalUnavailable,
    signal_task_event,
)

log = logging.getLogger("awaithumans.relay.temporal")


def relay_app(client: Client | Callable[[], Awaitable[Client]], webhook_secret: str) -> ASGIApp:
    """Build the relay's ASGI app.

    Args:
        client: A connected Temporal client (its namespace is the one signalled), or an
            async factory called once at the first request, for servers that own the loop.
        webhook_secret: The ``whsec_...`` secret printed by ``awaithumans webhook-secret``.

    Returns:
        An ASGI application; ``POST`` any path with a webhook, ``GET /healthz`` to probe.
    """
    connected: list[Client] = [client] if isinstance(client, Client) else []

    async def temporal() -> Client:
        if not connected:
            assert not isinstance(client, Client)
            connected.append(await client())
        return connected[0]

    async def on_event(data: dict[str, Any]) -> dict[str, Any]:
        try:
            return await signal_task_event(await temporal(), data)
        except NotATemporalEvent as exc:
            raise Reply(400, {"error": str(exc)}) from None
        except TemporalUnavailable as exc:
            raise Reply(503, {"error": f"temporal: {exc}"}) from None

    return webhook_app(webhook_secret, on_event)
