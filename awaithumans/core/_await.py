"""``await_human`` and ``await_human_sync``: ask a person, get a typed answer back.

The wait protocol is written once, as a coroutine. ``await_human_sync`` drives that same
coroutine, on a private event loop in the calling thread or, when the caller already runs a
loop (a notebook, an async web handler calling sync code), on a helper thread.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from awaithumans.core._client import TaskClient
from awaithumans.core._discovery import resolve_server
from awaithumans.core._errors import (
    SchemaValidationError,
    TaskCancelledError,
    TaskTimeoutError,
    TimeoutRangeError,
    VerificationExhaustedError,
)
from awaithumans.core._sync import run_in_thread
from awaithumans.core._wire import (
    MAX_POLL_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    CreateTaskRequest,
    PollResponse,
    TaskStatus,
    TaskView,
    derive_idempotency_key,
)

R = TypeVar("R", bound=BaseModel)

# How long to keep trying to reach the server for the first create (AWAITHUMANS_CONNECT_TIMEOUT
# overrides). A missing server is usually a mistake the user wants to hear about now, not
# after the task's whole timeout.
_CREATE_WINDOW_SECONDS = 15.0
# After the task's deadline the server's scheduler marks it timed out within a second; give it
# a little longer before the SDK decides on its own.
_DEADLINE_GRACE_SECONDS = 5.0


class _Dumpable(Protocol):
    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


def build_create_request(
    *,
    task: str,
    payload_schema: type[BaseModel],
    payload: BaseModel | dict[str, Any],
    response_schema: type[BaseModel],
    timeout_seconds: int,
    idempotency_key: str | None = None,
    notify: list[str] | None = None,
    assign_to: str | list[str] | dict[str, Any] | None = None,
    verifier: _Dumpable | dict[str, Any] | None = None,
    redact_payload: bool = False,
    task_metadata: dict[str, Any] | None = None,
    callback_url: str | None = None,
    form_definition: dict[str, Any] | None = None,
) -> CreateTaskRequest:
    """Validate the caller's arguments and build the wire body (no I/O).

    Adapters call this too, so a Temporal or LangGraph task carries exactly the body a plain
    ``await_human`` would send.
    """
    if not MIN_TIMEOUT_SECONDS <= timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise TimeoutRangeError(timeout_seconds, MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS)
    raw = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    try:
        checked = payload_schema.model_validate(raw)
    except ValidationError as exc:
        raise SchemaValidationError("payload", _summary(exc), errors=_errors(exc)) from None
    payload_json = checked.model_dump(mode="json")
    if form_definition is None:
        from awaithumans.core._forms import extract_form

        form_definition = extract_form(response_schema).model_dump(mode="json", exclude_none=True)
    verifier_json: dict[str, Any] | None
    if verifier is None or isinstance(verifier, dict):
        verifier_json = verifier
    else:
        verifier_json = verifier.model_dump(mode="json")
    return CreateTaskRequest(
        task=task,
        payload=payload_json,
        payload_schema=payload_schema.model_json_schema(),
        response_schema=response_schema.model_json_schema(),
        timeout_seconds=timeout_seconds,
        idempotency_key=idempotency_key or derive_idempotency_key(task, payload_json),
        form_definition=form_definition,
        assign_to=_assign_to_wire(assign_to),
        notify=notify,
        verifier_config=verifier_json,
        redact_payload=redact_payload,
        callback_url=callback_url,
        task_metadata=task_metadata,
    )


def _assign_to_wire(value: str | list[str] | dict[str, Any] | None) -> dict[str, Any] | None:
    # The published protocol's shapes: one email, several emails, or a structured object.
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        return {"email": value}
    return {"emails": list(value)}


def outcome_of(
    poll: PollResponse, *, task: str, task_id: str, timeout_seconds: int, response_schema: type[R]
) -> R | None:
    """Turn a terminal poll into the typed answer or the matching error; None if not terminal."""
    status = poll.status
    if status is TaskStatus.COMPLETED:
        try:
            return response_schema.model_validate(poll.response or {})
        except ValidationError as exc:
            raise SchemaValidationError("response", _summary(exc), errors=_errors(exc)) from None
    if status is TaskStatus.TIMED_OUT:
        raise TaskTimeoutError(task, timeout_seconds, task_id=task_id)
    if status is TaskStatus.CANCELLED:
        raise TaskCancelledError(task, task_id=task_id)
    if status is TaskStatus.VERIFICATION_EXHAUSTED:
        raise VerificationExhaustedError(task, poll.verification_attempt, task_id=task_id)
    return None


async def wait_for_answer(
    client: TaskClient,
    view: TaskView,
    response_schema: type[R],
    *,
    deadline: float,
) -> R:
    """Long-poll ``view``'s task until it is final, through restarts and dropped links."""
    while True:
        remaining = deadline - time.monotonic()
        poll = await client.poll(
            view.id,
            wait=min(MAX_POLL_SECONDS, max(1.0, remaining)),
            # A dead server past the deadline means the human can no longer answer.
            deadline=deadline + _DEADLINE_GRACE_SECONDS,
        )
        answer = outcome_of(
            poll,
            task=view.task,
            task_id=view.id,
            timeout_seconds=view.timeout_seconds,
            response_schema=response_schema,
        )
        if answer is not None:
            return answer
        if time.monotonic() > deadline + _DEADLINE_GRACE_SECONDS:
            raise TaskTimeoutError(view.task, view.timeout_seconds, task_id=view.id)


def _deadline_from(view: TaskView, fallback_seconds: int) -> float:
    # The server's timeout_at is the truth (a replayed task started earlier than we did);
    # map it onto the monotonic clock so wall-clock jumps cannot stretch the wait.
    remaining = view.timeout_at.timestamp() - time.time()
    if view.timeout_at.tzinfo is None:
        remaining = float(fallback_seconds)
    return time.monotonic() + max(0.0, min(remaining, float(fallback_seconds)))


def _create_window() -> float:
    raw = os.environ.get("AWAITHUMANS_CONNECT_TIMEOUT")
    try:
        return max(0.0, float(raw)) if raw else _CREATE_WINDOW_SECONDS
    except ValueError:
        return _CREATE_WINDOW_SECONDS


def _say(line: str) -> None:
    if not os.environ.get("AWAITHUMANS_QUIET"):
        print(line, file=sys.stderr, flush=True)


async def await_human(
    *,
    task: str,
    payload_schema: type[BaseModel],
    payload: BaseModel | dict[str, Any],
    response_schema: type[R],
    timeout_seconds: int,
    idempotency_key: str | None = None,
    notify: list[str] | None = None,
    assign_to: str | list[str] | dict[str, Any] | None = None,
    verifier: _Dumpable | dict[str, Any] | None = None,
    redact_payload: bool = False,
    task_metadata: dict[str, Any] | None = None,
    callback_url: str | None = None,
    server_url: str | None = None,
    api_key: str | None = None,
) -> R:
    """Ask a human and wait for a validated answer.

    Args:
        task: The question, as the human sees it.
        payload_schema: Pydantic model describing ``payload``.
        payload: What the human needs to decide (an instance of ``payload_schema``).
        response_schema: Pydantic model of the answer; the return value is an instance of it.
        timeout_seconds: How long the human has (60 s to 30 days).
        idempotency_key: Same key, same task: a re-run resumes the wait or gets the stored
            answer. Derived from ``task`` and ``payload`` when omitted.
        notify: Routes such as ``"slack:#approvals"`` or ``"email:ops@acme.com"``.
        assign_to: An email, several emails, or a structured assignment.
        verifier: A verifier config, e.g. ``claude_verifier(...)``; runs on the server.
        redact_payload: Hide the payload from channels that would show it in the clear.
        task_metadata: Free-form JSON stored with the task.
        callback_url: A URL the server calls (signed webhook) when the task ends.
        server_url: The server; else ``AWAITHUMANS_URL``, the dev file, or localhost:3001.
        api_key: The credential; else ``AWAITHUMANS_API_KEY`` / the dev admin token.

    Returns:
        The human's answer as a ``response_schema`` instance.

    Raises:
        TaskTimeoutError: Nobody answered in time.
        TaskCancelledError: The task was cancelled.
        VerificationExhaustedError: The verifier rejected every attempt.
        SchemaValidationError: The payload (before sending) or the answer does not validate.
        IdempotencyConflictError: The key is taken by a task with other content.
        ServerUnreachableError: The server could not be reached in time.
        AuthenticationError: The server refused the credential.
    """
    body = build_create_request(
        task=task,
        payload_schema=payload_schema,
        payload=payload,
        response_schema=response_schema,
        timeout_seconds=timeout_seconds,
        idempotency_key=idempotency_key,
        notify=notify,
        assign_to=assign_to,
        verifier=verifier,
        redact_payload=redact_payload,
        task_metadata=task_metadata,
        callback_url=callback_url,
    )
    target = resolve_server(server_url, api_key)
    async with TaskClient(target.url, target.api_key) as client:
        create_by = time.monotonic() + min(_create_window(), float(timeout_seconds))
        view, replayed = await client.create_task(body, deadline=create_by)
        review_url = view.review_url or f"{target.url}/task?id={view.id}"
        _say(f"✓ Task {'resumed' if replayed else 'created'}: {view.id}")
        _say(f"  Review at: {review_url}")
        if not view.status.is_terminal:
            _say(f"  Waiting for human (timeout: {view.timeout_seconds}s). Ctrl-C to abort.")
        deadline = _deadline_from(view, view.timeout_seconds)
        return await wait_for_answer(client, view, response_schema, deadline=deadline)


def await_human_sync(
    *,
    task: str,
    payload_schema: type[BaseModel],
    payload: BaseModel | dict[str, Any],
    response_schema: type[R],
    timeout_seconds: int,
    idempotency_key: str | None = None,
    notify: list[str] | None = None,
    assign_to: str | list[str] | dict[str, Any] | None = None,
    verifier: _Dumpable | dict[str, Any] | None = None,
    redact_payload: bool = False,
    task_metadata: dict[str, Any] | None = None,
    callback_url: str | None = None,
    server_url: str | None = None,
    api_key: str | None = None,
) -> R:
    """Blocking form of :func:`await_human`; same arguments, same result, same errors.

    Works from plain scripts and from code that already runs an event loop (a notebook).
    Ctrl-C in a script prints one line and exits with status 130 instead of a traceback;
    the task stays open, and re-running with the same idempotency key resumes it.
    """
    coro = await_human(
        task=task,
        payload_schema=payload_schema,
        payload=payload,
        response_schema=response_schema,
        timeout_seconds=timeout_seconds,
        idempotency_key=idempotency_key,
        notify=notify,
        assign_to=assign_to,
        verifier=verifier,
        redact_payload=redact_payload,
        task_metadata=task_metadata,
        callback_url=callback_url,
        server_url=server_url,
        api_key=api_key,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            return asyncio.run(coro)
        except KeyboardInterrupt:
            _on_interrupt()
            raise
    return run_in_thread(coro)


def _on_interrupt() -> None:
    _say("\n✗ Aborted. The task stays open; run again with the same idempotency_key to resume.")
    interactive = hasattr(sys, "ps1") or sys.flags.interactive
    if threading.current_thread() is threading.main_thread() and not interactive:
        raise SystemExit(130) from None
    # In a REPL or a notebook the KeyboardInterrupt goes on to the caller as usual.


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]


def _summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )
