"""Receive the awaithumans server's webhooks and resume the threads whose task was answered.

    WEBHOOK_SECRET=$(awaithumans webhook-secret) python relay.py

Listens on 127.0.0.1:$RELAY_PORT (8766; 0 picks a free port). Prints each thread it
finished. A task answered in the Agent Inbox is completed on the server too, and its webhook
comes here as well; the thread no longer waits for it, so the relay leaves it alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

import uvicorn
from graph import CHECKPOINT_DB, build
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from awaithumans.adapters.langgraph import relay_app


def report_resumed(graph: Any, app: Any) -> Any:
    """Wrap the relay: print the thread's outcome after each webhook it resumed a thread with."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        asked = bytearray()
        replied = bytearray()

        async def recv() -> Any:
            message = await receive()
            asked.extend(message.get("body", b""))
            return message

        async def reply(message: Any) -> None:
            replied.extend(
                message.get("body", b"") if message["type"] == "http.response.body" else b""
            )
            await send(message)

        await app(scope, recv, reply)
        if scope["type"] != "http" or scope["method"] != "POST":
            return
        try:
            resumed = json.loads(replied)["resumed"]
            thread_id = json.loads(asked)["data"]["task_metadata"]["langgraph"]["thread_id"]
        except (ValueError, KeyError, TypeError):
            return
        if not resumed:
            return
        state = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        print(f"finished {thread_id}: {state.values.get('outcome')}", flush=True)

    return wrapped


async def main() -> None:
    secret = os.environ["WEBHOOK_SECRET"]
    # IPPROTO_TCP spelled out so asyncio turns Nagle off on this socket (see
    # examples/langgraph/relay.py).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(os.environ.get("RELAY_PORT", "8766"))))
    sock.listen(64)
    async with AsyncSqliteSaver.from_conn_string(CHECKPOINT_DB) as saver:
        graph = build(saver)
        app = report_resumed(graph, relay_app(graph, secret))
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        print(f"relay listening on http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
        await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
