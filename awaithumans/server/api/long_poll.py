"""The long-poll: what ``GET /api/tasks/{id}/poll`` answers, and a shortcut to it.

Every waiting agent re-polls about twice a minute, so with thousands of them the poll is
most of the server's requests, and almost all of its idle work. :func:`answer_poll` is the
answer itself (the route in ``api/tasks.py`` calls it); :class:`LongPollShortcut` gives it
the well-formed polls directly, past FastAPI's routing, dependency solving and exception
layers. Those cost about a third of an idle re-poll's CPU, and each parked poll held their
frames and objects for up to 30 s, which every garbage collection then walked (10,000
waiting agents: 12.6 % of a core, a third of it in the collector).

The shortcut takes only what it fully understands: ``GET``, a task id, no query or exactly
``timeout=N`` in range, an ``Authorization`` header (the authenticator reads it as the
route's would). Anything else (a session cookie, a bad timeout, a malformed id, no header)
goes on to the route, which is the reference: it validates,
documents (OpenAPI) and refuses with the usual errors. Both end in :func:`answer_poll`, so
what a client gets does not depend on which way its request went.
"""

from __future__ import annotations

import re

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import MAX_POLL_SECONDS, PollResponse, TaskStatus
from awaithumans.server.api.deps import json_response
from awaithumans.server.api.errors import error_response
from awaithumans.server.auth import Credentials
from awaithumans.server.context import ServerContext
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal
from awaithumans.server.services import answers, votes
from awaithumans.server.services.hub import Snapshot
from awaithumans.server.services.views import default_applied, open_for, snapshot_of

DEFAULT_POLL_SECONDS = 25

_POLL_PATH = re.compile(r"/api/tasks/(tsk_[0-9a-f]{24})/poll")
_TIMEOUT_QUERY = re.compile(rb"timeout=([1-9][0-9]{0,2})")


async def snapshot(ctx: ServerContext, task_id: str) -> Snapshot | None:
    """The task's state from the hub's cache, else from the database (then cached)."""
    snap = ctx.hub.get(task_id)
    if snap is not None:
        return snap
    task = await answers.load_task(ctx, task_id)
    if task is None:
        return None
    approvals = await votes.approvals_for(ctx, task)
    snap = snapshot_of(
        task, open_for(ctx.sealer, task_id, task.response_enc), approvals=approvals or ()
    )
    ctx.hub.remember(snap)
    return snap


async def answer_poll(ctx: ServerContext, who: Principal, task_id: str, timeout: int) -> Response:
    """The task's state once it changes, or after ``timeout`` seconds.

    Raises:
        ApiError: 404 for a task ``who`` may not see; 503 when the server is shutting down
            (the client polls again, and finds another process).
    """
    snap = await snapshot(ctx, task_id)
    if snap is None or not answers.sees(who, task_id, snap.owner_id, snap.assigned_to_user_id):
        raise answers.not_found(task_id).error()
    woken_at = None
    if not snap.terminal:
        woken_at = await ctx.hub.wait(task_id, snap.version, float(timeout))
        snap = await snapshot(ctx, task_id) or snap
        if ctx.hub.closing and not snap.terminal:
            # Shutting down: send the client elsewhere (it retries with backoff) and drop
            # the keep-alive connection so it cannot park here again.
            raise ApiError(
                503,
                ErrorCode.SERVER_RESTARTING,
                "The server is shutting down; poll again.",
                headers={"Connection": "close", "Retry-After": "1"},
            )
    applied = default_applied(snap.status, snap.response)
    body = PollResponse(
        status=snap.status,
        response=snap.response if snap.status is TaskStatus.COMPLETED or applied else None,
        completed_at=snap.completed_at,
        timed_out_at=snap.timed_out_at,
        verification_attempt=snap.verification_attempt,
        default_applied=applied,
        receipt=snap.receipt if snap.status is TaskStatus.COMPLETED else None,
        approvals_required=snap.approvals_required,
        approvals=list(snap.approvals),
    )
    response = json_response(body.model_dump_json())
    if woken_at is not None and snap.terminal:
        # Runs once the response is sent: the answer-to-return latency ends there.
        response.background = BackgroundTask(ctx.metrics.answer_sent, woken_at)
    return response


def poll_timeout(query_string: bytes) -> int | None:
    """The poll's timeout from a query the shortcut understands, else None."""
    if not query_string:
        return DEFAULT_POLL_SECONDS
    found = _TIMEOUT_QUERY.fullmatch(query_string)
    if found is None:
        return None
    seconds = int(found.group(1))
    return seconds if seconds <= MAX_POLL_SECONDS else None


class LongPollShortcut:
    """ASGI middleware: answers well-formed long-polls that carry an Authorization header."""

    def __init__(self, app: ASGIApp, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = _POLL_PATH.fullmatch(scope["path"])
        timeout = poll_timeout(scope["query_string"]) if path is not None else None
        authorization = _header(scope, b"authorization") if timeout is not None else None
        if path is None or timeout is None or authorization is None:
            await self.app(scope, receive, send)
            return
        credentials = Credentials(
            authorization=authorization,
            session_cookie=None,
            method="GET",
            origin=None,
            host=_header(scope, b"host") or "",
        )
        try:
            found = await self.ctx.auth.authenticate(credentials)
            if found is None:  # not a bearer token after all: the route says what is wrong
                await self.app(scope, receive, send)
                return
            response = await answer_poll(self.ctx, found.principal, path.group(1), timeout)
        except ApiError as exc:
            response = error_response(
                exc.status_code, exc.code, exc.message, exc.details, exc.headers
            )
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
