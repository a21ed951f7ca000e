"""Just enough HTTP/1.1 over asyncio streams to hold thousands of connections cheaply.

A load generator built on httpx costs about 2.5 ms of CPU per request on this machine
(/work/shared/DESIGN.md, performance notes): ten thousand waiters re-polling every 30 s
would keep a core busy in the *client*, on the same two cores as the server, and a burst of
a thousand returns would take seconds to read. This client writes pre-built request bytes
on a keep-alive connection and reads a ``Content-Length`` (or chunked) response, at a few
tens of microseconds per request, so the benchmark measures the server.

What goes over the wire is what the SDK sends: the same method, path, query and
``Authorization`` header, one connection per waiting agent, kept alive between polls.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class ConnectionClosed(ConnectionError):
    """The server closed the connection (or asked to) before or after a response."""


@dataclass(frozen=True)
class Endpoint:
    """Where to connect and the headers every request carries."""

    host: str
    port: int
    token: str

    @classmethod
    def of(cls, url: str, token: str) -> Endpoint:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, token)

    def request(self, method: str, target: str, body: Any = None) -> bytes:
        """The bytes of one request; a JSON body when ``body`` is not None."""
        lines = [
            f"{method} {target} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Authorization: Bearer {self.token}",
            "User-Agent: awaithumans-bench",
            "Accept: application/json",
        ]
        data = b""
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


class Connection:
    """One keep-alive connection; requests on it go one after the other."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False

    @classmethod
    async def open(cls, endpoint: Endpoint) -> Connection:
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> None:
        """Write a request without waiting for its response (see :meth:`response`)."""
        if self.closed:
            raise ConnectionClosed("connection already closed")
        self.writer.write(request)
        await self.writer.drain()

    async def response(self) -> tuple[int, bytes]:
        """Read the next response: (status, body)."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            self.close()
            raise ConnectionClosed(str(exc) or type(exc).__name__) from exc
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        try:
            if "content-length" in headers:
                body = await self.reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await self._chunked()
            else:
                body = b""
        except (asyncio.IncompleteReadError, OSError) as exc:
            self.close()
            raise ConnectionClosed(str(exc) or type(exc).__name__) from exc
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    async def request(self, request: bytes) -> tuple[int, bytes]:
        await self.send(request)
        return await self.response()

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()
