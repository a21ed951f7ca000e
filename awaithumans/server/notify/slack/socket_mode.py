"""Socket Mode: Slack's interactions and events over a websocket this server opens.

With ``AWAITHUMANS_SLACK_APP_TOKEN`` (``xapp-``) set, the server needs no public URL: it asks
Slack for a websocket (``apps.connections.open``, through ``AWAITHUMANS_SLACK_API_URL`` like
every other call) and receives the same payloads the request URLs would get, handled by
the same code. Each envelope is acknowledged first (with a modal's errors, when there are
some), and the slower work runs after, as over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.socket_mode.websockets import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from awaithumans.server.notify.slack.inbound import guarded

log = logging.getLogger("awaithumans.server.slack")

Handle = Callable[[dict[str, Any]], Awaitable[tuple[dict[str, Any] | None, Any]]]

# Between tries to open the websocket while Slack cannot be reached.
_RETRY_SECONDS = (1, 2, 5, 10, 30)


class SocketModeLink:
    """The websocket to Slack, connected in the background and kept up by the SDK."""

    def __init__(self, app_token: str, api_url: str, interactions: Handle, events: Handle) -> None:
        self._app_token = app_token
        self._api_url = api_url
        self._handlers = {"interactive": interactions, "events_api": events}
        self._client: SocketModeClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._followups: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        # Built here, on the running loop: the client starts its message processor at once.
        client = SocketModeClient(
            self._app_token, web_client=AsyncWebClient(base_url=self._api_url), logger=log
        )
        client.socket_mode_request_listeners.append(self._on_request)
        self._client = client
        self._task = asyncio.create_task(self._connect(client), name="awaithumans-slack-socket")

    async def _connect(self, client: SocketModeClient) -> None:
        attempt = 0
        while True:
            try:
                await client.connect()  # type: ignore[no-untyped-call]
            except Exception as exc:  # Slack unreachable: the server runs on regardless
                wait = _RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)]
                log.warning("slack socket mode: cannot connect (%s); again in %s s", exc, wait)
                attempt += 1
                await asyncio.sleep(wait)
                continue
            log.info("slack socket mode: connected")
            return

    async def _on_request(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        handle = self._handlers.get(req.type)
        if handle is None:
            await client.send_socket_mode_response(SocketModeResponse(req.envelope_id))
            return
        payload = req.payload if isinstance(req.payload, dict) else {}
        body, later = await handle(payload)
        await client.send_socket_mode_response(SocketModeResponse(req.envelope_id, body))
        if later is not None:
            task = asyncio.create_task(guarded(later))
            self._followups.add(task)
            task.add_done_callback(self._followups.discard)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._followups, return_exceptions=True)
        client = self._client
        if client is not None:
            # Stop reading before the SDK closes the socket: its reader would otherwise log
            # the clean close it is about to cause as an error ("Failed to receive …").
            for reader in (client.message_receiver, client.current_session_monitor):
                if reader is not None:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
            await client.close()  # type: ignore[no-untyped-call]
