"""``ask_human`` and ``get_answer`` as plain coroutines: a task asked, waited on for a budget.

MCP clients give up on a tool call after about a minute, and a person may take hours, so no
call here waits longer than its budget: it returns the answer when there is one, else a
``waiting`` result that tells the model how to pick the wait up again. The protocol's
objects stay in ``_server``; this module speaks only awaithumans' own SDK, so each outcome
is a JSON object a test (or another transport) can read as it is.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from awaithumans.core._ask import _assign_to_wire, summary
from awaithumans.core._await import _create_window
from awaithumans.core._client import TaskClient
from awaithumans.core._codes import ErrorCode
from awaithumans.core._discovery import resolve_server
from awaithumans.core._errors import AwaitHumansError, ServerUnreachableError
from awaithumans.core._forms import form_from_json_schema
from awaithumans.core._receipts import DecisionCheck, receipt_check
from awaithumans.core._wire import (
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    CreateTaskRequest,
    PollResponse,
    TaskStatus,
    TaskView,
    derive_idempotency_key,
)

#: How long one tool call waits for a person by default: under the minute after which MCP
#: clients commonly abandon a call, with room for the round trips around it.
DEFAULT_WAIT_SECONDS = 25.0
WAIT_ENV = "AWAITHUMANS_MCP_WAIT_SECONDS"
#: The most a call may wait: past ten minutes no client is still listening.
MAX_WAIT_SECONDS = 600.0
#: How long a person has when the model does not say: a day, since people answer from
#: Slack or email, not only while the chat is open.
DEFAULT_TIMEOUT_SECONDS = 24 * 3600
#: The payload's schema: the model's payload is any JSON object, shown as it is.
PAYLOAD_SCHEMA: dict[str, Any] = {"type": "object"}
# One long-poll at most this long, so progress goes out this often while a call waits.
_PROGRESS_EVERY_SECONDS = 5.0
# The least time a create (or the first read of get_answer) gets, even under a smaller
# budget: one round trip to a healthy server, so a budget of 0 still asks.
_LEAST_REACH_SECONDS = 1.0

#: ``progress(elapsed_seconds, message)``: told between long-polls while a call waits.
Progress = Callable[[float, str], Awaitable[None]]


class ToolRefusal(Exception):
    """Bad input or a server's refusal: the tool's error result, with a stable code."""

    def __init__(self, code: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body

    @classmethod
    def of(cls, exc: AwaitHumansError) -> ToolRefusal:
        return cls(exc.code, exc.message, hint=exc.hint)


def wait_budget(explicit: float | None = None) -> float:
    """The wait per call: the argument, else ``AWAITHUMANS_MCP_WAIT_SECONDS``, else 25 s.

    Raises:
        ValueError: Not a number from 0 to 600.
    """
    raw: float | str | None = explicit
    if raw is None:
        raw = os.environ.get(WAIT_ENV) or DEFAULT_WAIT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{WAIT_ENV}: not a number of seconds: {raw!r}") from None
    if not 0 <= value <= MAX_WAIT_SECONDS:
        raise ValueError(f"the wait must be 0 to {MAX_WAIT_SECONDS:.0f} seconds, not {value:g}")
    return value


@dataclass(frozen=True, slots=True)
class Desk:
    """Where questions go and how long one call waits for their answers.

    Attributes:
        wait_seconds: The budget of one ``ask_human`` / ``get_answer`` call.
        server_url: The awaithumans server; else discovered as the SDK does, on every call
            (``AWAITHUMANS_URL``, the running dev server's file, localhost:3001).
        api_key: The credential; else ``AWAITHUMANS_API_KEY`` or the dev server's token.
    """

    wait_seconds: float = DEFAULT_WAIT_SECONDS
    server_url: str | None = None
    api_key: str | None = None

    async def ask(
        self,
        *,
        task: Any,
        payload: Any,
        response_schema: Any,
        notify: list[str] | None = None,
        assign_to: str | list[str] | dict[str, Any] | None = None,
        timeout_seconds: int | None = None,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Create the task (or find it again by its key) and wait for it up to the budget.

        Raises:
            ToolRefusal: Bad input, or the server refused or could not be reached.
        """
        body = question(
            task=task,
            payload=payload,
            response_schema=response_schema,
            notify=notify,
            assign_to=assign_to,
            timeout_seconds=timeout_seconds,
            idempotency_key=idempotency_key,
        )
        started = time.monotonic()
        try:
            check = receipt_check(body)
            target = resolve_server(self.server_url, self.api_key)
            async with TaskClient(target.url, target.api_key, user_agent=_AGENT) as client:
                limit = self._reach_limit()
                view, _ = await _within(
                    limit, target.url, client.create_task(body, deadline=started + limit)
                )
                review_url = _review_url(view, target.url)
                return await self._wait(
                    client, view, review_url, started, check, progress, self.wait_seconds
                )
        except AwaitHumansError as exc:
            raise ToolRefusal.of(exc) from None

    async def open(self, body: CreateTaskRequest) -> tuple[TaskView, str]:
        """Create the task (or find it again by its key) without waiting for an answer: the
        task as it stands, and its review URL. ``body`` is what :func:`question` built.

        Raises:
            ToolRefusal: The server refused or could not be reached, or the receipt key
                (``AWAITHUMANS_RECEIPT_PUBLIC_KEY``) is bad: refused as :meth:`ask` refuses
                it, before anyone is asked (``tasks/result`` could never accept the answer).
        """
        try:
            receipt_check(body)
            target = resolve_server(self.server_url, self.api_key)
            async with TaskClient(target.url, target.api_key, user_agent=_AGENT) as client:
                limit = self._reach_limit()
                view, _ = await _within(
                    limit,
                    target.url,
                    client.create_task(body, deadline=time.monotonic() + limit),
                )
        except AwaitHumansError as exc:
            raise ToolRefusal.of(exc) from None
        return view, _review_url(view, target.url)

    async def look(self, task_id: str) -> tuple[TaskView, str]:
        """A task as it stands, and its review URL (no waiting).

        Raises:
            ToolRefusal: No such task, or the server refused or could not be reached.
        """
        try:
            target = resolve_server(self.server_url, self.api_key)
            async with TaskClient(target.url, target.api_key, user_agent=_AGENT) as client:
                limit = self._reach_limit()
                view = await _within(
                    limit,
                    target.url,
                    client.get_task(task_id, deadline=time.monotonic() + limit),
                )
        except AwaitHumansError as exc:
            raise ToolRefusal.of(exc) from None
        return view, _review_url(view, target.url)

    async def cancel(self, task_id: str, reason: str) -> tuple[TaskView, str]:
        """Cancel a task nobody has answered; the task as it ends, and its review URL.

        Raises:
            ToolRefusal: No such task, it is already final (``TASK_ALREADY_TERMINAL``), or
                the server refused or could not be reached.
        """
        try:
            target = resolve_server(self.server_url, self.api_key)
            async with TaskClient(target.url, target.api_key, user_agent=_AGENT) as client:
                view = await _within(
                    self._reach_limit(), target.url, client.cancel_task(task_id, reason=reason)
                )
        except AwaitHumansError as exc:
            raise ToolRefusal.of(exc) from None
        return view, _review_url(view, target.url)

    async def answer(self, task_id: Any, *, progress: Progress | None = None) -> dict[str, Any]:
        """The outcome of a task asked before, waiting for it up to the budget.

        Raises:
            ToolRefusal: No such task, or the server refused or could not be reached.
        """
        if not isinstance(task_id, str) or not task_id.strip():
            raise ToolRefusal(ErrorCode.INVALID_REQUEST, "task_id: give the id ask_human returned")
        started = time.monotonic()
        try:
            target = resolve_server(self.server_url, self.api_key)
            async with TaskClient(target.url, target.api_key, user_agent=_AGENT) as client:
                limit = self._reach_limit()
                view = await _within(
                    limit, target.url, client.get_task(task_id.strip(), deadline=started + limit)
                )
                check = receipt_check(_asked(view))
                review_url = _review_url(view, target.url)
                return await self._wait(
                    client, view, review_url, started, check, progress, self.wait_seconds
                )
        except AwaitHumansError as exc:
            raise ToolRefusal.of(exc) from None

    def _reach_limit(self) -> float:
        """How long a call keeps trying to reach the server before it reports it unreachable:
        ``AWAITHUMANS_CONNECT_TIMEOUT`` (15 s) but never past the call's budget, since the
        client gives up on the whole call, not on its first step."""
        return max(min(_create_window(), self.wait_seconds), _LEAST_REACH_SECONDS)

    async def _wait(
        self,
        client: TaskClient,
        view: TaskView,
        review_url: str,
        started: float,
        check: DecisionCheck | None,
        progress: Progress | None,
        budget: float,
    ) -> dict[str, Any]:
        poll = PollResponse(
            status=view.status,
            response=view.response,
            verification_attempt=view.verification_attempt,
            default_applied=view.default_applied,
            receipt=view.receipt,
        )
        deadline = started + budget
        while not poll.status.is_terminal:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if progress is not None:
                await progress(
                    time.monotonic() - started, f"Waiting for a person to answer {view.id}"
                )
            poll = await client.poll(
                view.id,
                wait=min(remaining, _PROGRESS_EVERY_SECONDS),
                # A server restarting under the wait gets the rest of the budget to return.
                deadline=max(deadline, time.monotonic() + 1.0),
            )
        if check is not None and poll.status is TaskStatus.COMPLETED:
            check(view.id, poll)
        return outcome(view, poll, review_url, self.wait_seconds)


_AGENT = "awaithumans-mcp"


def _review_url(view: TaskView, server_url: str) -> str:
    """Where a person answers ``view``: the server's link, else its task page."""
    return view.review_url or f"{server_url}/task?id={view.id}"


T = TypeVar("T")


async def _within(limit: float, url: str, step: Awaitable[T]) -> T:
    """``step`` (which retries a refused connection until its own deadline), cut off after
    ``limit`` seconds too: a server that accepts the connection and never replies would
    otherwise hold the call for the HTTP client's timeouts.

    Raises:
        ServerUnreachableError: No reply within ``limit``, naming the server's URL.
    """
    try:
        async with asyncio.timeout(limit):
            return await step
    except TimeoutError:
        raise ServerUnreachableError(url, f"no reply within {limit:g} s") from None


def question(
    *,
    task: Any,
    payload: Any,
    response_schema: Any,
    notify: list[str] | None = None,
    assign_to: str | list[str] | dict[str, Any] | None = None,
    timeout_seconds: int | None = None,
    idempotency_key: str | None = None,
) -> CreateTaskRequest:
    """Check the model's arguments and build the create body, as the SDK would (no I/O).

    The form is derived from ``response_schema`` by the function the server uses when a
    client sends none, so what the person sees is what the server would show.

    Raises:
        ToolRefusal: ``INVALID_SCHEMA`` (not an object schema), ``SCHEMA_VALIDATION_FAILED``
            (the payload is not a JSON object), ``TIMEOUT_OUT_OF_RANGE``, or
            ``VALIDATION_ERROR`` (another argument the server would refuse).
    """
    if not isinstance(task, str) or not task.strip():
        raise ToolRefusal(ErrorCode.VALIDATION_ERROR, "task: say what the person should decide")
    if not isinstance(payload, dict):
        raise ToolRefusal(
            ErrorCode.SCHEMA_VALIDATION_FAILED,
            f"payload: expected a JSON object of what the person needs to decide,"
            f" got {_kind(payload)}",
        )
    if not isinstance(response_schema, dict) or response_schema.get("type") != "object":
        got = (
            f"a schema of type {response_schema.get('type')!r}"
            if isinstance(response_schema, dict)
            else _kind(response_schema)
        )
        raise ToolRefusal(
            ErrorCode.INVALID_SCHEMA,
            'response_schema: expected the JSON schema of an object ({"type": "object",'
            f' "properties": {{...}}}}, one property per answer field), got {got}',
        )
    timeout = DEFAULT_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds
    if not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS:
        raise ToolRefusal(
            ErrorCode.TIMEOUT_OUT_OF_RANGE,
            f"timeout_seconds={timeout} is out of range; use {MIN_TIMEOUT_SECONDS}"
            f"..{MAX_TIMEOUT_SECONDS} (a minute to 30 days)",
        )
    try:
        form = form_from_json_schema(response_schema).model_dump(mode="json", exclude_none=True)
    except (TypeError, ValueError, KeyError) as exc:
        raise ToolRefusal(ErrorCode.INVALID_SCHEMA, f"response_schema: {exc}") from None
    try:
        return CreateTaskRequest(
            task=task.strip(),
            payload=payload,
            payload_schema=PAYLOAD_SCHEMA,
            response_schema=response_schema,
            timeout_seconds=timeout,
            idempotency_key=idempotency_key or derive_idempotency_key(task.strip(), payload),
            form_definition=form,
            assign_to=_assign_to_wire(assign_to),
            notify=notify,
        )
    except ValidationError as exc:
        raise ToolRefusal(ErrorCode.VALIDATION_ERROR, summary(exc)) from None


def outcome(
    view: TaskView, poll: PollResponse, review_url: str, wait_seconds: float
) -> dict[str, Any]:
    """What the model is told: the answer, the end without one, or how to keep waiting."""
    base: dict[str, Any] = {
        "task_id": view.id,
        "review_url": review_url,
        "idempotency_key": view.idempotency_key,
    }
    status = poll.status
    if status is TaskStatus.COMPLETED:
        return {
            "status": "completed",
            **base,
            "response": poll.response or {},
            "message": "A person answered; `response` is their answer.",
        }
    if status is TaskStatus.TIMED_OUT:
        ended: dict[str, Any] = {"status": "timed_out", **base}
        if poll.default_applied:
            ended["response"] = poll.response or {}
            ended["default_applied"] = True
        ended["message"] = (
            f"Nobody answered within the task's {view.timeout_seconds} s. Do not act as if"
            " approved; ask again (with a new idempotency_key) if it still matters."
        )
        return ended
    if status is TaskStatus.CANCELLED:
        return {
            "status": "cancelled",
            **base,
            "message": "The task was cancelled before anyone answered; do not proceed with it.",
        }
    if status is TaskStatus.VERIFICATION_EXHAUSTED:
        return {
            "status": "verification_exhausted",
            **base,
            "message": "Every answer given failed the task's verifier; there is no answer.",
        }
    return {
        "status": "waiting",
        **base,
        "task_status": status.value,
        "message": (
            f"No answer yet (waited {wait_seconds:g} s); a person has the task at review_url."
            f' Call get_answer with task_id="{view.id}" to wait again, or repeat ask_human'
            f' with the same arguments and idempotency_key="{view.idempotency_key}".'
            " Do not act on the question until the status is completed."
        ),
    }


def _asked(view: TaskView) -> CreateTaskRequest:
    """The create a task came from, as far as a receipt check needs it (what was shown)."""
    return CreateTaskRequest.model_construct(
        task=view.task,
        payload=view.payload or {},
        payload_schema=view.payload_schema,
        response_schema=view.response_schema,
        timeout_seconds=view.timeout_seconds,
        idempotency_key=view.idempotency_key,
        form_definition=view.form_definition,
    )


def _kind(value: Any) -> str:
    """What a JSON value is, in the words of the JSON schema's types."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
