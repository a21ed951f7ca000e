"""A stand-in for the model providers' HTTP APIs, on 127.0.0.1, for verifier tests.

The server under test talks to it through the official SDKs (``anthropic``, ``openai``,
``google-genai``), pointed here by their usual variables (:meth:`ProviderStandIn.env`). It
speaks the four wire formats the verifiers use:

* Anthropic Messages, ``POST /v1/messages``: answers with a ``tool_use`` block;
* OpenAI Chat Completions, ``POST /v1/chat/completions``: JSON text content;
* Azure OpenAI, ``POST /openai/deployments/{name}/chat/completions``: the same;
* Gemini, ``POST /v1beta/models/{model}:generateContent``: JSON text in a candidate.

What it answers is decided by a *brain*, a function of the parsed request (:class:`Call`),
which plays the model; faults (5xx, 429, a hang, malformed output) can be queued ahead.
The default brain reads the prompt the way a careful model would: the operator's rules from
the system message, the task's material only from the fenced data blocks.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-standin",
    "OPENAI_API_KEY": "sk-standin",
    "GEMINI_API_KEY": "gemini-standin",
    "AZURE_OPENAI_API_KEY": "azure-standin",
}

_FENCE = re.compile(r"<<<DATA (\w+) (\w+)>>>\n(.*?)\n<<<END \1>>>", re.S)


@dataclass
class Call:
    """One request, as the model would read it."""

    provider: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    system: str
    user: str
    model: str

    @property
    def nonce(self) -> str | None:
        found = re.search(r"<<<DATA (\w+) name>>>", self.system)
        return found.group(1) if found else None

    @property
    def blocks(self) -> dict[str, Any]:
        """The data blocks of the user message that carry this prompt's nonce, decoded."""
        nonce = self.nonce
        return {
            name: json.loads(text)
            for found_nonce, name, text in _FENCE.findall(self.user)
            if found_nonce == nonce
        }

    @property
    def outside_blocks(self) -> str:
        """The user message with every data block cut out: what may direct the model."""
        return _FENCE.sub("", self.user)

    @property
    def instructions(self) -> str:
        return self.system.split("Operator's instructions:", 1)[-1].strip()


Verdict = dict[str, Any]
Brain = Callable[[Call], Verdict]


def verdict(passed: bool, reason: str, parsed: dict[str, Any] | None = None) -> Verdict:
    return {
        "passed": passed,
        "reason": reason,
        "parsed_response": json.dumps(parsed) if parsed is not None else None,
    }


def careful_brain(call: Call) -> Verdict:
    """A model that follows the structure: the rules it obeys live outside the data.

    The operator's instructions understood: "notes required" (reject an answer without
    notes), "over N needs notes" (an amount over N in the payload needs notes). A free-text
    reply is parsed when it says approve/reject plainly; anything vaguer is refused.
    """
    blocks = call.blocks
    rules = call.instructions.lower()
    if "reply_text" in blocks:
        text = str(blocks["reply_text"]).lower()
        if re.search(r"\b(approve|approved|yes, approve)\b", text):
            parsed: dict[str, Any] = {"approved": True, "notes": str(blocks["reply_text"])}
        elif re.search(r"\b(reject|rejected|decline|deny)\b", text):
            parsed = {"approved": False, "notes": str(blocks["reply_text"])}
        else:
            return verdict(False, "The reply does not say whether to approve (field: approved).")
        return verdict(True, "The reply settles the decision.", parsed)
    answer = blocks.get("answer") or {}
    notes = (answer.get("notes") or "").strip()
    if "notes required" in rules and not notes:
        return verdict(False, "Explain the decision in the notes.")
    over = re.search(r"over (\d+) needs notes", rules)
    payload = blocks.get("payload") or {}
    if over and not notes and int(payload.get("amount_usd", 0)) > int(over.group(1)):
        return verdict(False, f"Amounts over {over.group(1)} need notes.")
    return verdict(True, "The answer follows the instructions.")


@dataclass
class Fault:
    """What the next call gets instead of a verdict."""

    kind: str  # "status" | "hang" | "malformed" | "no_verdict"
    status: int = 500
    seconds: float = 0.0


@dataclass
class ProviderStandIn:
    """The four provider APIs on one local port (see the module docstring)."""

    brain: Brain = careful_brain
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    #: How long each answered request took here, from its body read to its reply written:
    #: the "model's own time" a benchmark subtracts.
    service_seconds: list[float] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What the awaithumans server's environment needs to reach this stand-in."""
        return {
            **KEYS,
            "ANTHROPIC_BASE_URL": self.url,
            "OPENAI_BASE_URL": f"{self.url}/v1",
            "AZURE_OPENAI_ENDPOINT": self.url,
            "AWAITHUMANS_GEMINI_BASE_URL": self.url,
        }

    def fail_next(self, count: int, kind: str, *, status: int = 500, seconds: float = 0) -> None:
        with self._lock:
            self.faults.extend(Fault(kind, status, seconds) for _ in range(count))

    def start(self) -> ProviderStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as two writes; with Nagle on, the body would wait
                # ~40 ms for the client's delayed ACK on a kept-alive connection.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                started = time.perf_counter()
                status, reply = standin._answer(self.path, body, dict(self.headers))
                raw = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                with standin._lock:
                    standin.service_seconds.append(time.perf_counter() - started)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ProviderStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def calls_for(self, provider: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.provider == provider]

    # -- the wire formats -------------------------------------------------------------

    def _answer(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        call = _parse(path, body, {k.lower(): v for k, v in headers.items()})
        if call is None:
            return 404, {"error": {"message": f"no route {path}"}}
        with self._lock:
            self.calls.append(call)
            fault = self.faults.popleft() if self.faults else None
        if not _authorised(call):
            return 401, {"error": {"type": "authentication_error", "message": "bad key"}}
        if fault is not None and fault.kind == "status":
            return fault.status, {"error": {"type": "api_error", "message": "stand-in fault"}}
        if fault is not None and fault.kind == "hang":
            time.sleep(fault.seconds)
        decided: Any = self.brain(call)
        if fault is not None and fault.kind == "malformed":
            decided = {"verdict": "looks fine to me"}
        tokens = (len(call.system.split()) + len(call.user.split()), 42)
        if fault is not None and fault.kind == "no_verdict":
            return 200, _reply(call, None, tokens)
        return 200, _reply(call, decided, tokens)


def _parse(path: str, body: dict[str, Any], headers: dict[str, str]) -> Call | None:
    bare = path.split("?", 1)[0]
    if bare == "/v1/messages":
        user = body["messages"][0]["content"]
        return Call("claude", path, body, headers, str(body.get("system", "")), user, body["model"])
    if bare == "/v1/chat/completions" or re.fullmatch(
        r"/openai/deployments/[^/]+/chat/completions", bare
    ):
        provider = "openai" if bare.startswith("/v1/") else "azure_openai"
        messages = {m["role"]: m["content"] for m in body["messages"]}
        model = body.get("model") or bare.split("/")[3]
        return Call(provider, path, body, headers, messages["system"], messages["user"], model)
    found = re.fullmatch(r"/v1(?:beta)?/models/([^/:]+):generateContent", bare)
    if found:
        system = "".join(p["text"] for p in body["systemInstruction"]["parts"])
        user = "".join(p["text"] for p in body["contents"][0]["parts"])
        return Call("gemini", path, body, headers, system, user, found.group(1))
    return None


def _authorised(call: Call) -> bool:
    h = call.headers
    if call.provider == "claude":
        # Older SDKs send x-api-key, newer ones a bearer token.
        key = KEYS["ANTHROPIC_API_KEY"]
        return key in (h.get("x-api-key"), h.get("authorization", "").removeprefix("Bearer "))
    if call.provider == "openai":
        return h.get("authorization") == f"Bearer {KEYS['OPENAI_API_KEY']}"
    if call.provider == "azure_openai":
        return h.get("api-key") == KEYS["AZURE_OPENAI_API_KEY"]
    return h.get("x-goog-api-key") == KEYS["GEMINI_API_KEY"]


def _reply(call: Call, decided: Any, tokens: tuple[int, int]) -> dict[str, Any]:
    tokens_in, tokens_out = tokens
    text = json.dumps(decided) if decided is not None else "I think it is fine."
    if call.provider == "claude":
        content: list[dict[str, Any]] = [{"type": "text", "text": "Recording my verdict."}]
        if decided is not None:
            content.append(
                {
                    "type": "tool_use",
                    "id": "toolu_standin",
                    "name": "record_verdict",
                    "input": decided,
                }
            )
        return {
            "id": "msg_standin",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": "tool_use" if decided is not None else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }
    if call.provider in ("openai", "azure_openai"):
        return {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {
            "promptTokenCount": tokens_in,
            "candidatesTokenCount": tokens_out,
            "totalTokenCount": tokens_in + tokens_out,
        },
        "modelVersion": call.model,
    }
