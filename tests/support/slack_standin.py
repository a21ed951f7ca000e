"""A stand-in for Slack, on 127.0.0.1: the Web API the server calls, and Socket Mode.

The server under test talks to it through the official ``slack-sdk`` (its ``AsyncWebClient``
pointed here by ``AWAITHUMANS_SLACK_API_URL``). It keeps a small workspace (members,
channels, the messages posted and updated, views opened, reactions) so tests can look at
what a person in Slack would see, and answers the methods the channel uses:
``auth.test``, ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``,
``conversations.open``, ``conversations.list``, ``users.list``, ``users.info``,
``users.lookupByEmail``, ``views.open``, ``views.update``, ``reactions.add``,
``oauth.v2.access`` and ``apps.connections.open``. Faults (an error code, a 429 with
``Retry-After``) can be queued per method.

:func:`signed` builds the headers Slack puts on the requests it sends to an app (the
``v0`` HMAC of timestamp and body), for interactions and events posted by the tests; and
the Socket Mode websocket (``ws://127.0.0.1:PORT/socket``) carries the same payloads in
envelopes, acknowledged by the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import ServerConnection, serve

TEAM = "T0STANDIN"
BOT_TOKEN = "xoxb-standin-bot"
APP_TOKEN = "xapp-1-standin-app"
SIGNING_SECRET = "standin-signing-secret"
BOT_USER = "U0BOTUSER"


def signed(body: bytes, secret: str = SIGNING_SECRET, at: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request to an app with."""
    ts = str(int(time.time()) if at is None else at)
    base = f"v0:{ts}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Member:
    id: str
    name: str
    real_name: str
    email: str | None = None
    deleted: bool = False
    is_bot: bool = False

    def as_json(self) -> dict[str, Any]:
        profile: dict[str, Any] = {"real_name": self.real_name, "display_name": self.name}
        if self.email:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": TEAM,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": self.deleted,
            "is_bot": self.is_bot,
            "profile": profile,
        }


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: int = 0


@dataclass
class SlackCall:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float


@dataclass
class SlackFault:
    error: str | None = None  # an ``ok: false`` error code
    status: int = 200  # 429: rate limited
    retry_after: int = 1


@dataclass
class SlackStandIn:
    """The Slack Web API and Socket Mode on one local port (see the module docstring)."""

    port: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)  # name -> id
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[dict[str, Any]] = field(default_factory=list)
    calls: list[SlackCall] = field(default_factory=list)
    faults: dict[str, deque[SlackFault]] = field(default_factory=dict)
    #: Tokens the OAuth flow handed out, by team.
    installed: dict[str, str] = field(default_factory=dict)
    #: Seconds every Web API call takes before it answers (a slow Slack).
    latency: float = 0.0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)
    _counts: dict[str, int] = field(default_factory=dict)
    _open: set[socket.socket] = field(default_factory=set)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _socket: SocketModeServer | None = None

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)
        if not self.members:
            for member in (
                Member("U0ALICE01", "alice", "Alice Archer", "alice@acme.com"),
                Member("U0BOB0002", "bob", "Bob Baker", "bob@acme.com"),
                Member("U0CAROL03", "carol", "Carol Clark", None),
                Member(BOT_USER, "awaithumans", "Await Humans", None, is_bot=True),
            ):
                self.members[member.id] = member
        if not self.channels:
            self.channels = {"approvals": "C0APPROVAL", "general": "C0GENERAL1"}

    # -- running ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """What ``AWAITHUMANS_SLACK_API_URL`` is set to."""
        return f"{self.url}/api/"

    def env(self, **extra: str) -> dict[str, str]:
        """A static-token server's environment."""
        return {
            "AWAITHUMANS_SLACK_BOT_TOKEN": BOT_TOKEN,
            "AWAITHUMANS_SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "AWAITHUMANS_SLACK_API_URL": self.api_url,
            **extra,
        }

    def start(self) -> SlackStandIn:
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
                # A client that hangs up mid-reply (a server shutting down) is not an error.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()

            def do_GET(self) -> None:
                self._handle(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self._handle(self.rfile.read(length))

            def _handle(self, raw: bytes) -> None:
                split = urlsplit(self.path)
                args: dict[str, Any] = {k: v[0] for k, v in parse_qs(split.query).items()}
                kind = self.headers.get("content-type", "")
                if raw and "json" in kind:
                    args.update(json.loads(raw))
                elif raw:
                    args.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                auth = self.headers.get("authorization", "")
                token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
                method = split.path.removeprefix("/api/")
                status, body, headers = standin._call(method, args, token)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._socket = SocketModeServer().start()
        return self

    def stop(self) -> None:
        if self._socket is not None:
            self._socket.stop()
            self._socket = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Kept-alive connections too, as a restarted Slack would drop them.
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def socket_mode(self) -> SocketModeServer:
        assert self._socket is not None
        return self._socket

    # -- looking at the workspace ---------------------------------------------------------

    def fail_next(self, method: str, count: int = 1, **fault: Any) -> None:
        with self._lock:
            queue = self.faults.setdefault(method, deque())
            queue.extend(SlackFault(**fault) for _ in range(count))

    def count(self, method: str) -> int:
        """How many calls to ``method`` came so far."""
        with self._lock:
            return self._counts.get(method, 0)

    def wait_for_calls(self, method: str, count: int, timeout: float) -> bool:
        """Block until ``count`` calls to ``method`` came; False if ``timeout`` passed."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self._counts.get(method, 0) >= count, timeout)

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def posted(self) -> list[Message]:
        """Top-level messages (not thread replies), oldest first."""
        with self._lock:
            return [m for m in self.messages.values() if m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages.values() if (m.channel, m.thread_ts) == (channel, ts)]

    def dm_channel(self, user: str) -> str:
        return f"D{user[1:]}"

    # -- the Web API --------------------------------------------------------------------

    def _call(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.calls.append(SlackCall(method, args, token, time.monotonic()))
            self._counts[method] = self._counts.get(method, 0) + 1
            self._arrived.notify_all()
            queue = self.faults.get(method)
            fault = queue.popleft() if queue else None
        if self.latency:
            time.sleep(self.latency)  # this request's own thread: other calls go on
        if fault is not None and fault.status == 429:
            headers = {"Retry-After": str(fault.retry_after)}
            return 429, {"ok": False, "error": "ratelimited"}, headers
        if fault is not None:
            return 200, {"ok": False, "error": fault.error}, {}
        if method == "oauth.v2.access":
            return 200, self._oauth(args), {}
        if method == "apps.connections.open":
            if token != APP_TOKEN:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            return 200, {"ok": True, "url": self.socket_mode.url}, {}
        if token != BOT_TOKEN and token not in self.installed.values():
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        result: dict[str, Any] = handler(args)
        return 200, {"ok": True, **result} if "error" not in result else {"ok": False, **result}, {}

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _channel_id(self, channel: str) -> str | None:
        if channel.startswith("#"):
            return self.channels.get(channel[1:])
        if channel in self.channels.values() or channel.startswith("D"):
            return channel
        return None

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"team_id": TEAM, "team": "Stand-in", "user_id": BOT_USER, "bot_id": "B0STANDIN"}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(str(args.get("channel", "")))
        if channel is None:
            return {"error": "channel_not_found"}
        message = Message(
            channel,
            self._next_ts(),
            str(args.get("text", "")),
            _blocks(args.get("blocks")),
            args.get("thread_ts"),
        )
        with self._lock:
            self.messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel")), str(args.get("ts")))
        with self._lock:
            message = self.messages.get(key)
            if message is None:
                return {"error": "message_not_found"}
            message.text = str(args.get("text", message.text))
            message.blocks = _blocks(args.get("blocks"))
            message.updates += 1
        return {"channel": key[0], "ts": key[1]}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.ephemeral.append(dict(args))
        return {"message_ts": self._next_ts()}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("users", "")).split(",")[0]
        if user not in self.members:
            return {"error": "user_not_found"}
        return {"channel": {"id": self.dm_channel(user)}}

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        found = [{"id": cid, "name": name} for name, cid in self.channels.items()]
        return {"channels": found, "response_metadata": {"next_cursor": ""}}

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        # Two pages, so the client's paging is exercised.
        members = [m.as_json() for m in self.members.values()]
        cursor = args.get("cursor") or ""
        half = (len(members) + 1) // 2
        if not cursor:
            return {"members": members[:half], "response_metadata": {"next_cursor": "page2"}}
        return {"members": members[half:], "response_metadata": {"next_cursor": ""}}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        member = self.members.get(str(args.get("user")))
        return {"user": member.as_json()} if member else {"error": "user_not_found"}

    def _users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email", "")).lower()
        for member in self.members.values():
            if member.email and member.email.lower() == email:
                return {"user": member.as_json()}
        return {"error": "users_not_found"}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not args.get("trigger_id"):
            return {"error": "invalid_trigger_id"}
        record = {"id": f"V{uuid.uuid4().hex[:10].upper()}", "trigger_id": args["trigger_id"],
                  "view": view}  # fmt: skip
        with self._lock:
            self.views.append(record)
        return {"view": {"id": record["id"], **(view or {})}}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        with self._lock:
            self.views.append({"id": args.get("view_id"), "update": True, "view": view})
        return {"view": {"id": args.get("view_id")}}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.reactions.append(dict(args))
        return {}

    def _oauth(self, args: dict[str, Any]) -> dict[str, Any]:
        code = str(args.get("code", ""))
        if not code.startswith("code-"):
            return {"ok": False, "error": "invalid_code"}
        team = code.removeprefix("code-")
        token = f"xoxb-oauth-{team}"
        with self._lock:
            self.installed[team] = token
        return {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": "chat:write,users:read",
            "bot_user_id": BOT_USER,
            "app_id": "A0STANDIN",
            "team": {"id": team, "name": f"Team {team}"},
            "enterprise": None,
            "authed_user": {"id": "U0ALICE01"},
        }


def _blocks(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or [])


class SocketModeServer:
    """Slack's Socket Mode end: a websocket that sends envelopes and waits for their acks."""

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._connections: list[ServerConnection] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = threading.Event()
        self._stop: asyncio.Future[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket"

    def start(self) -> SocketModeServer:
        ready = threading.Event()

        async def main() -> None:
            self._stop = self._loop.create_future()
            async with serve(self._serve, "127.0.0.1", 0) as server:
                self.port = server.sockets[0].getsockname()[1]
                ready.set()
                await self._stop

        threading.Thread(target=self._loop.run_until_complete, args=(main(),), daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        def done() -> None:
            if self._stop is not None and not self._stop.done():
                self._stop.set_result(None)

        self._loop.call_soon_threadsafe(done)

    async def _serve(self, connection: ServerConnection) -> None:
        self._connections.append(connection)
        await connection.send(json.dumps({"type": "hello", "num_connections": 1}))
        self._connected.set()
        try:
            async for raw in connection:
                ack = json.loads(raw)
                waiting = self._acks.pop(str(ack.get("envelope_id")), None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(ack)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._connections.remove(connection)

    def wait_connected(self, timeout: float = 10) -> bool:
        return self._connected.wait(timeout)

    def send(self, kind: str, payload: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send one envelope (``interactive``, ``events_api``) and return the app's ack."""

        async def go() -> dict[str, Any]:
            envelope_id = uuid.uuid4().hex
            waiting: asyncio.Future[dict[str, Any]] = self._loop.create_future()
            self._acks[envelope_id] = waiting
            envelope = {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind == "interactive",
            }
            await self._connections[-1].send(json.dumps(envelope))
            return await asyncio.wait_for(waiting, timeout)

        return asyncio.run_coroutine_threadsafe(go(), self._loop).result(timeout + 1)
