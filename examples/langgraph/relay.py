"""Receive the awaithumans server's webhooks and resume the refund threads they answer.

    WEBHOOK_SECRET=$(awaithumans webhook-secret) python relay.py

Listens on 127.0.0.1:$RELAY_PORT (8765; 0 picks a free port). Prints each finished
order's outcome, read back from the checkpoint file.
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


def report_finished(graph: Any, app: Any) -> Any:
    """Wrap the relay: after each webhook it answers, print the thread if it finished."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        body = bytearray()

        async def recv() -> Any:
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        await app(scope, recv, send)
        if scope["type"] != "http" or scope["method"] != "POST":
            return
        try:
            thread_id = json.loads(body)["data"]["task_metadata"]["langgraph"]["thread_id"]
        except (ValueError, KeyError, TypeError):
            return
        state = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        if state.values and not state.next:
            print(f"finished {thread_id}: {json.dumps(state.values, sort_keys=True)}", flush=True)

    return wrapped


async def main() -> None:
    secret = os.environ["WEBHOOK_SECRET"]
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say so, and with Nagle on, a reply written as headers then body waits ~40 ms
    # for the peer's delayed ACK on a kept-alive connection.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(os.environ.get("RELAY_PORT", "8765"))))
    sock.listen(64)  # webhooks arriving from here on wait in the backlog
    async with AsyncSqliteSaver.from_conn_string(CHECKPOINT_DB) as saver:
        graph = build(saver)
        app = report_finished(graph, relay_app(graph, secret))
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        print(f"relay listening on http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
        await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
