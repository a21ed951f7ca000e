"""``await_human`` and ``await_human_sync``: ask a person, get a typed answer back.

The wait protocol is written once, as a coroutine. ``await_human_sync`` drives that same
coroutine, on a private event loop in the calling thread or, when the caller already runs a
loop (a notebook, an async web handler calling sync code), on a helper thread. The pieces
the adapters reuse (:func:`create_task`, :func:`outcome_of`) live here too.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from awaithumans.core._approvals import mark_approvals
from awaithumans.core._ask import (
    RAISE,
    Ask,
    Assignee,
    RejectionPolicy,
    VerifierConfig,
    error_list,
    summary,
)
from awaithumans.core._client import TaskClient
from awaithumans.core._defaults import default_answer
from awaithumans.core._discovery import resolve_server
from awaithumans.core._errors import (
    SchemaValidationError,
    ServerUnreachableError,
    TaskCancelledError,
    TaskTimeoutError,
    VerificationExhaustedError,
)
from awaithumans.core._receipts import DecisionCheck, receipt_check
from awaithumans.core._sync import blocking
from awaithumans.core._wire import (
    MAX_POLL_SECONDS,
    CreateTaskRequest,
    PollResponse,
    TaskStatus,
    TaskView,
)

R = TypeVar("R", bound=BaseModel)

# How long to keep trying to reach the server for the first create (AWAITHUMANS_CONNECT_TIMEOUT
# overrides). A missing server is usually a mistake the user wants to hear about now, not
# after the task's whole timeout.
_CREATE_WINDOW_SECONDS = 15.0
# After the task's deadline the server's scheduler marks it timed out within a second; give it
# a little longer before the SDK decides on its own.
_DEADLINE_GRACE_SECONDS = 5.0


def outcome_of(
    poll: PollResponse,
    *,
    task: str,
    task_id: str,
    timeout_seconds: int,
    response_schema: type[R],
    on_timeout: Literal["raise"] | R = RAISE,
) -> R | None:
    """Turn a terminal poll into the typed answer or the matching error; None if not terminal.

    A timed-out task returns the ``on_timeout`` default (the one the server applied, else
    the caller's own), marked so ``is_default`` tells it from a person's answer. A task
    decided by several approvers' votes returns the deciding answer, marked with every
    vote (``approvals_of``).
    """
    status = poll.status
    if status is TaskStatus.COMPLETED:
        try:
            answer = response_schema.model_validate(poll.response or {})
        except ValidationError as exc:
            raise SchemaValidationError("response", summary(exc), errors=error_list(exc)) from None
        return mark_approvals(answer, poll.approvals)
    if status is TaskStatus.TIMED_OUT:
        return timed_out(
            on_timeout,
            response_schema,
            task=task,
            task_id=task_id,
            timeout_seconds=timeout_seconds,
            stored=poll.response,
        )
    if status is TaskStatus.CANCELLED:
        raise TaskCancelledError(task, task_id=task_id)
    if status is TaskStatus.VERIFICATION_EXHAUSTED:
        raise VerificationExhaustedError(task, poll.verification_attempt, task_id=task_id)
    return None


def timed_out(
    on_timeout: Literal["raise"] | R,
    response_schema: type[R],
    *,
    task: str,
    task_id: str | None,
    timeout_seconds: int,
    stored: dict[str, Any] | None = None,
) -> R:
    """What a call does when nobody answered in time: the default (marked), or raise.

    ``stored`` is the default the server applied, when it said; without it (the SDK's own
    deadline, an engine's backstop timer) the caller's ``on_timeout`` is the answer.

    Raises:
        TaskTimeoutError: ``on_timeout="raise"``.
    """
    answer = default_answer(on_timeout, response_schema, stored)
    if answer is None:
        raise TaskTimeoutError(task, timeout_seconds, task_id=task_id)
    return answer


def poll_of(view: TaskView) -> PollResponse:
    """A task as its long-poll reports it."""
    return PollResponse(
        status=view.status,
        response=view.response,
        verification_attempt=view.verification_attempt,
        default_applied=view.default_applied,
        approvals_required=view.approvals_required,
        approvals=view.approvals or [],
    )


def view_outcome(
    view: TaskView, response_schema: type[R], on_timeout: Literal["raise"] | R = RAISE
) -> R | None:
    """:func:`outcome_of` for a task read whole (a replayed create, a cancel's reply)."""
    return outcome_of(
        poll_of(view),
        task=view.task,
        task_id=view.id,
        timeout_seconds=view.timeout_seconds,
        response_schema=response_schema,
        on_timeout=on_timeout,
    )


async def create_task(
    client: TaskClient, base_url: str, body: CreateTaskRequest
) -> tuple[TaskView, bool, str]:
    """Create the task (or find it again by its key): (task, replayed, review URL).

    Keeps trying to reach the server for a short window (``AWAITHUMANS_CONNECT_TIMEOUT``
    seconds, 15 by default, at most the task's timeout).
    """
    deadline = time.monotonic() + min(_create_window(), float(body.timeout_seconds))
    view, replayed = await client.create_task(body, deadline=deadline)
    return view, replayed, view.review_url or f"{base_url}/task?id={view.id}"


async def wait_for_answer(
    client: TaskClient,
    view: TaskView,
    response_schema: type[R],
    *,
    deadline: float,
    on_timeout: Literal["raise"] | R = RAISE,
    check: DecisionCheck | None = None,
) -> R:
    """Long-poll ``view``'s task until it is final, through restarts and dropped links.

    ``check`` runs on a completed poll before its answer is returned (the receipt check).
    """

    def too_late() -> R:
        return timed_out(
            on_timeout,
            response_schema,
            task=view.task,
            task_id=view.id,
            timeout_seconds=view.timeout_seconds,
        )

    while True:
        remaining = deadline - time.monotonic()
        try:
            poll = await client.poll(
                view.id,
                wait=min(MAX_POLL_SECONDS, max(1.0, remaining)),
                # A dead server past the deadline means the human can no longer answer.
                deadline=deadline + _DEADLINE_GRACE_SECONDS,
            )
        except ServerUnreachableError:
            # Only past the deadline (and its grace): with a default, that default is the
            # answer, as the server's own scheduler will record it once it is back.
            if isinstance(on_timeout, str):
                raise
            return too_late()
        if check is not None and poll.status is TaskStatus.COMPLETED:
            check(view.id, poll)
        answer = outcome_of(
            poll,
            task=view.task,
            task_id=view.id,
            timeout_seconds=view.timeout_seconds,
            response_schema=response_schema,
            on_timeout=on_timeout,
        )
        if answer is not None:
            return answer
        if time.monotonic() > deadline + _DEADLINE_GRACE_SECONDS:
            return too_late()


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


def _how(view: TaskView, replayed: bool) -> str:
    """'created', 'resumed' (the same key, still waiting) or 'already answered' (a rerun of
    a script whose task has its answer: it is returned at once, nobody is asked again)."""
    if not replayed:
        return "created"
    if view.status is TaskStatus.COMPLETED:
        return "already answered"
    if view.status.is_terminal:
        return f"already {view.status.value.replace('_', ' ')}"
    return "resumed"


def _say(line: str) -> None:
    if not os.environ.get("AWAITHUMANS_QUIET"):
        print(line, file=sys.stderr, flush=True)


async def ask_and_wait(ask: Ask[R]) -> R:
    """Create ``ask``'s task and long-poll it to the end (the body of :func:`await_human`)."""
    body = ask.request()
    check = receipt_check(body)
    target = resolve_server(ask.server_url, ask.api_key)
    async with TaskClient(target.url, target.api_key) as client:
        view, replayed, review_url = await create_task(client, target.url, body)
        _say(f"✓ Task {_how(view, replayed)}: {view.id}")
        _say(f"  Review at: {review_url}")
        if not view.status.is_terminal:
            _say(f"  Waiting for human (timeout: {view.timeout_seconds}s). Ctrl-C to abort.")
        deadline = _deadline_from(view, view.timeout_seconds)
        return await wait_for_answer(
            client,
            view,
            ask.response_schema,
            deadline=deadline,
            on_timeout=ask.on_timeout,
            check=check,
        )


async def await_human(
    *,
    task: str,
    payload_schema: type[BaseModel],
    payload: BaseModel | dict[str, Any],
    response_schema: type[R],
    timeout_seconds: int,
    idempotency_key: str | None = None,
    notify: list[str] | None = None,
    assign_to: Assignee | None = None,
    verifier: VerifierConfig | dict[str, Any] | None = None,
    redact_payload: bool = False,
    task_metadata: dict[str, Any] | None = None,
    callback_url: str | None = None,
    on_timeout: Literal["raise"] | R = "raise",
    approvers: list[str] | None = None,
    operators_may_answer: bool = True,
    approvals_required: int = 1,
    rejection_policy: RejectionPolicy = "any_rejects",
    reminders: list[timedelta] | None = None,
    escalate_after: timedelta | None = None,
    escalate_to: list[str] | None = None,
    escalate_reassign: bool = False,
    server_url: str | None = None,
    api_key: str | None = None,
) -> R:
    """Ask a human and wait for a validated answer.

    The parameters are those of :class:`~awaithumans.core.Ask`, where each is described.

    Returns:
        The human's answer as a ``response_schema`` instance; after a timeout, the
        ``on_timeout`` default when one is given (``awaithumans.is_default`` says so).

    Raises:
        TaskTimeoutError: Nobody answered in time (and ``on_timeout="raise"``).
        TaskCancelledError: The task was cancelled.
        VerificationExhaustedError: The verifier rejected every attempt.
        SchemaValidationError: The payload (before sending) or the answer does not validate.
        TimeoutRangeError: ``timeout_seconds`` is out of range (60 s to 30 days).
        IdempotencyConflictError: The key is taken by a task with other content.
        ServerUnreachableError: The server could not be reached in time.
        AuthenticationError: The server refused the credential.
        ReceiptInvalidError: ``AWAITHUMANS_RECEIPT_PUBLIC_KEY`` is set and the answer came
            without a receipt signed by that key for this task, answer and question.
    """
    return await ask_and_wait(
        Ask(
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
            on_timeout=on_timeout,
            approvers=approvers,
            operators_may_answer=operators_may_answer,
            approvals_required=approvals_required,
            rejection_policy=rejection_policy,
            reminders=reminders,
            escalate_after=escalate_after,
            escalate_to=escalate_to,
            escalate_reassign=escalate_reassign,
            server_url=server_url,
            api_key=api_key,
        )
    )


def _on_interrupt() -> None:
    _say("\n✗ Aborted. The task stays open; run again with the same idempotency_key to resume.")
    interactive = hasattr(sys, "ps1") or sys.flags.interactive
    if threading.current_thread() is threading.main_thread() and not interactive:
        raise SystemExit(130) from None
    # In a REPL or a notebook the KeyboardInterrupt goes on to the caller as usual.


await_human_sync = blocking(
    await_human,
    on_interrupt=_on_interrupt,
    doc="""Blocking form of :func:`await_human`; same arguments, same result, same errors.

    Works from plain scripts and from code that already runs an event loop (a notebook).
    Ctrl-C in a script prints one line and exits with status 130 instead of a traceback;
    the task stays open, and re-running with the same idempotency key resumes it.
    """,
)
