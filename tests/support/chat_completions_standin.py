"""A stand-in of OpenAI's Chat Completions API on 127.0.0.1, playing an agent's model.

``POST /v1/chat/completions`` (non-streaming) answers with the assistant message its *brain*
returns for the request's messages: tool calls, or a final text. The OpenAI Agents SDK
reaches it through ``AsyncOpenAI(base_url=standin.base_url)`` and its
``OpenAIChatCompletionsModel``; every request body is kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: What the brain returns: an assistant message (``content`` and/or ``tool_calls``).
Brain = Callable[[list[dict[str, Any]]], dict[str, Any]]


def tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One entry of an assistant message's ``tool_calls``."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


@dataclass
class ChatCompletionsStandIn:
    brain: Brain
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> ChatCompletionsStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self.path != "/v1/chat/completions" or body.get("stream"):
                    self.send_error(404, "only non-streaming chat completions here")
                    return
                standin.requests.append(body)
                message = {"role": "assistant", "content": None, **standin.brain(body["messages"])}
                reply = json.dumps(
                    {
                        "id": f"chatcmpl-{len(standin.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "standin"),
                        "choices": [
                            {
                                "index": 0,
                                "message": message,
                                "finish_reason": "tool_calls"
                                if message.get("tool_calls")
                                else "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ChatCompletionsStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
