"""An async HTTP client for the awaithumans task API.

It speaks the wire protocol of ``_wire`` and turns every failure into the error tree of
``_errors``. Transient failures (connection refused or dropped, 502/503/504, 429) are retried
with capped exponential backoff and full jitter until a caller-given deadline, because the
server restarting under a waiting agent is normal, not exceptional: a call waiting through
a restart (an absence under a minute) is back within about half a second of the server's
return.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from awaithumans.core._codes import ErrorCode
from awaithumans.core._errors import (
    AuthenticationError,
    IdempotencyConflictError,
    InvalidRequestError,
    PermissionDeniedError,
    SchemaValidationError,
    ServerUnreachableError,
    TaskNotFoundError,
)
from awaithumans.core._wire import (
    MAX_POLL_SECONDS,
    CreateTaskRequest,
    PollResponse,
    TaskView,
)

T = TypeVar("T")

# Jitter from a private generator: the global one is the application's (seeded runs,
# Hypothesis) and a library should not move it.
_jitter = random.Random()

_RETRY_STATUS = frozenset({429, 502, 503, 504})
_BACKOFF_BASE = 0.1
# The longest pause between two tries while the server has been away for less than
# _LONG_OUTAGE_SECONDS: a restart or a deploy, after which waiting agents should see the
# answer at once (within a second of the server's return, issue 15), not after a 5 s nap.
# Against a dead server a try is a refused connect (or a load balancer's 503): with full
# jitter about 4 a second per waiter on average, cheap for the host, and spread out in
# time, so the waiters do not all come back in the same instant either.
_BACKOFF_CAP = 0.5
# A server away for longer is an outage, not a restart: a few seconds more do not matter
# then, and thousands of waiters need not knock at 4 Hz for hours.
_LONG_OUTAGE_SECONDS = 60.0
_LONG_OUTAGE_CAP = 5.0


class _Transient(Exception):
    """A failure worth retrying; carries the last detail for the final error message."""


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every client in the process.

    Building one loads the CA bundle, about 20 ms of CPU; httpx would do it for every client,
    and every ``await_human`` call has its own client.
    """
    cafile = os.environ.get("SSL_CERT_FILE")
    capath = os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def backoff_delay(attempt: int, away: float = 0.0) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)].

    Args:
        attempt: Tries that failed so far, minus one.
        away: Seconds since the first failure; the cap grows once it is a long outage.
    """
    cap = _BACKOFF_CAP if away < _LONG_OUTAGE_SECONDS else _LONG_OUTAGE_CAP
    return _jitter.uniform(0, min(cap, _BACKOFF_BASE * (2 ** min(attempt, 32))))


class TaskClient:
    """Talks to one awaithumans server with one credential.

    Use as ``async with TaskClient(url, api_key) as client: ...``. The connection pool is
    shared by every call made through the instance.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "awaithumans-python",
    ) -> None:
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            # Reads may legitimately take the whole long-poll window.
            timeout=httpx.Timeout(10.0, read=MAX_POLL_SECONDS + 15.0),
            transport=transport,
            verify=_shared_ssl_context(),
        )

    async def __aenter__(self) -> TaskClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- operations -------------------------------------------------------------------

    async def create_task(
        self, body: CreateTaskRequest, *, deadline: float
    ) -> tuple[TaskView, bool]:
        """Create (or find, by idempotency key) a task.

        Returns:
            The task and whether the server replayed an existing one.
        """

        async def once() -> tuple[TaskView, bool]:
            resp = await self._http.post(
                "/api/tasks", json=body.model_dump(mode="json", exclude_none=True)
            )
            if resp.status_code in (200, 201):
                replayed = resp.headers.get("Idempotent-Replayed", "").lower() == "true"
                return TaskView.model_validate(resp.json()), replayed
            if resp.status_code == 409:
                raise IdempotencyConflictError(body.idempotency_key, _message(resp))
            raise self._error_for(resp)

        return await self._retrying(once, deadline=deadline)

    async def poll(self, task_id: str, *, wait: float, deadline: float) -> PollResponse:
        """Long-poll a task; returns as soon as it changes or after ``wait`` seconds."""
        wait_s = max(1, min(MAX_POLL_SECONDS, int(wait)))

        async def once() -> PollResponse:
            resp = await self._http.get(f"/api/tasks/{task_id}/poll", params={"timeout": wait_s})
            if resp.status_code == 200:
                return PollResponse.model_validate(resp.json())
            if resp.status_code == 404:
                raise TaskNotFoundError(task_id)
            raise self._error_for(resp)

        return await self._retrying(once, deadline=deadline)

    async def get_task(self, task_id: str, *, deadline: float | None = None) -> TaskView:
        async def once() -> TaskView:
            resp = await self._http.get(f"/api/tasks/{task_id}")
            if resp.status_code == 200:
                return TaskView.model_validate(resp.json())
            if resp.status_code == 404:
                raise TaskNotFoundError(task_id)
            raise self._error_for(resp)

        return await self._retrying(once, deadline=deadline or time.monotonic() + 30)

    async def complete_task(self, task_id: str, response: dict[str, Any]) -> TaskView:
        """Submit a human's answer (needs an operator or reviewer credential)."""
        resp = await self._http.post(f"/api/tasks/{task_id}/complete", json={"response": response})
        if resp.status_code == 200:
            return TaskView.model_validate(resp.json())
        if resp.status_code == 404:
            raise TaskNotFoundError(task_id)
        raise self._error_for(resp)

    async def cancel_task(self, task_id: str, *, reason: str | None = None) -> TaskView:
        resp = await self._http.post(f"/api/tasks/{task_id}/cancel", json={"reason": reason})
        if resp.status_code == 200:
            return TaskView.model_validate(resp.json())
        if resp.status_code == 404:
            raise TaskNotFoundError(task_id)
        raise self._error_for(resp)

    # -- plumbing ---------------------------------------------------------------------

    async def _retrying(self, once: Callable[[], Awaitable[T]], *, deadline: float) -> T:
        attempt = 0
        first_failure: float | None = None
        while True:
            try:
                return await once()
            except (httpx.TransportError, _Transient) as exc:
                detail = _describe(exc)
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            remaining = deadline - now
            if remaining <= 0:
                raise ServerUnreachableError(self.base_url, detail)
            await asyncio.sleep(min(backoff_delay(attempt, now - first_failure), remaining))
            attempt += 1

    def _error_for(self, resp: httpx.Response) -> Exception:
        if resp.status_code in _RETRY_STATUS or resp.status_code >= 500:
            return _Transient(f"HTTP {resp.status_code}")
        code, message, details = _error_fields(resp)
        status = resp.status_code
        if status == 401:
            return AuthenticationError(
                message,
                code=code,
                status_code=status,
                hint="Set AWAITHUMANS_API_KEY (an agent key from `awaithumans create-agent-key`)"
                " or run against `awaithumans dev`, whose token the SDK finds by itself.",
            )
        if status == 403:
            # The credential is fine; the server's message says what it may not do.
            return PermissionDeniedError(
                message, code=code, status_code=status, hint=_FORBIDDEN_HINTS.get(code or "")
            )
        if code == ErrorCode.SCHEMA_VALIDATION_FAILED:
            return SchemaValidationError("request", message, errors=details)
        return InvalidRequestError(message, code=code, status_code=status, details=details)


_FORBIDDEN_HINTS: dict[str, str] = {
    ErrorCode.NOT_ASSIGNED_TO_YOU: "The task is assigned to someone else: answer as them or as"
    " an operator, or have an operator reassign it.",
    ErrorCode.FORBIDDEN: "This credential may not do it: agent keys create and read tasks;"
    " answering needs an operator's or the assignee's credential.",
}


def _error_fields(resp: httpx.Response) -> tuple[str | None, str, list[dict[str, Any]]]:
    try:
        body = resp.json()
    except ValueError:
        return None, f"HTTP {resp.status_code}: {resp.text[:200]}", []
    if not isinstance(body, dict):
        return None, f"HTTP {resp.status_code}", []
    details = body.get("details")
    return (
        body.get("error") if isinstance(body.get("error"), str) else None,
        str(body.get("message") or f"HTTP {resp.status_code}"),
        details if isinstance(details, list) else [],
    )


def _message(resp: httpx.Response) -> str | None:
    return _error_fields(resp)[1]


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
