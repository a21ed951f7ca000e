"""``await_human`` for Temporal workflows: a durable wait for a person's answer.

Runs inside the workflow sandbox, so everything here is deterministic: the body is built
from the arguments alone, the idempotency key from the workflow id and a per-workflow call
counter, and the only I/O happens in the activities of ``_activities``. The answer arrives
as a signal sent by the relay (``awaithumans relay temporal``) when the server posts the
task's webhook; no worker slot is held while a human thinks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from awaithumans.adapters._receipts import shown_of
    from awaithumans.adapters.temporal._activities import cancel_task, check_receipt, create_task
    from awaithumans.adapters.temporal._shared import (
        SIGNAL_NAME,
        CancelTaskInput,
        CheckReceiptInput,
        CreateTaskInput,
    )
    from awaithumans.core._ask import Ask, Assignee, RejectionPolicy, VerifierConfig
    from awaithumans.core._await import outcome_of, timed_out, view_outcome
    from awaithumans.core._codes import ErrorCode
    from awaithumans.core._errors import AwaitHumansError, ReceiptInvalidError
    from awaithumans.core._runs import TemporalWorkflow
    from awaithumans.core._wire import PollResponse, TaskStatus, TaskView

R = TypeVar("R", bound=BaseModel)

_STATE_ATTR = "_awaithumans_temporal_state"
_ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Unlimited attempts: a server that is down for a while should delay the question, not
# fail the workflow. Refusals (bad key, bad request) are non-retryable and end it at once.
_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
)
# The server times the task out itself and its webhook normally arrives first; the durable
# timer is the backstop for a lost webhook or a relay that is down, so it fires a little
# later to avoid racing the server.
_TIMER_GRACE_SECONDS = 10.0
# Workflows whose history predates the receipt check replay without it (no marker).
_RECEIPT_PATCH = "awaithumans-receipt-check"
# The check is local and quick; a worker crash mid-check is what a retry is for.
_CHECK_RETRY = RetryPolicy(maximum_attempts=3)
# Workflows whose history predates the check of a signal's other outcomes (a timeout, a
# cancel: read back from the server, which signs answers only) replay without it.
_OUTCOME_PATCH = "awaithumans-outcome-check"


@dataclass
class _State:
    """Per-workflow-run state; rebuilt identically when the workflow is replayed."""

    seq: int = 0
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, event: dict[str, Any]) -> None:
        """Signal handler: keep the first terminal event per task, ignore the rest.

        Webhooks are delivered at least once, so duplicates are normal and must be harmless.
        """
        task_id = event.get("task_id")
        status = event.get("status")
        if not isinstance(task_id, str) or task_id in self.events:
            return
        if status not in {s.value for s in TaskStatus if s.is_terminal}:
            return
        self.events[task_id] = event


def _state() -> _State:
    # State lives on the workflow instance, so it dies with the run and is rebuilt by replay;
    # module globals would be shared by every workflow in a worker.
    instance = workflow.instance()
    state: _State | None = getattr(instance, _STATE_ATTR, None)
    if state is None:
        state = _State()
        setattr(instance, _STATE_ATTR, state)
        # Signals that arrived before the first call are buffered by Temporal and handed to
        # the handler as soon as it is set.
        workflow.set_signal_handler(SIGNAL_NAME, state.record)
    return state


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
    """Ask a human from inside a Temporal workflow and durably wait for the typed answer.

    Call it only from workflow code. The worker must register :func:`activities` (or use
    :class:`AwaitHumansPlugin`), and the answer must reach the workflow: either the server
    signals it itself (``AWAITHUMANS_TEMPORAL_ADDRESS``), or ``callback_url`` reaches an
    ``awaithumans relay temporal`` connected to this workflow's namespace.

    The parameters are those of :class:`~awaithumans.core.Ask`. Here ``timeout_seconds``
    is a durable timer; ``idempotency_key`` defaults to ``temporal:{workflow_id}:{n}``,
    ``n`` counting this workflow's calls, so a reset or a replay finds the same task again;
    ``task_metadata`` gets a ``"temporal"`` entry with the workflow's address; and
    ``server_url`` / ``api_key`` are resolved on the worker when omitted (a key given here
    is stored in the workflow history). With an ``on_timeout`` default, a timeout (the
    server's, or the durable timer's when the server's word never came) returns it, and
    ``awaithumans.is_default(answer)`` is True for it in the workflow.

    Returns:
        The human's answer as a ``response_schema`` instance (or the ``on_timeout`` default).

    Raises:
        TaskTimeoutError: Nobody answered in time (and ``on_timeout="raise"``).
        TaskCancelledError: The task was cancelled.
        VerificationExhaustedError: The verifier rejected every attempt.
        SchemaValidationError: The payload or the answer does not validate.
        ReceiptInvalidError: The worker has ``AWAITHUMANS_RECEIPT_PUBLIC_KEY`` set and the
            answer's receipt does not prove it (checked in the ``check_receipt`` local activity).
        temporalio.exceptions.ActivityError: The server refused to create the task
            (its cause is a non-retryable ``ApplicationError`` typed with the error code).
    """
    return await _ask_in_workflow(
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


async def _ask_in_workflow(ask: Ask[R]) -> R:
    state = _state()
    seq = state.seq
    state.seq += 1
    info = workflow.info()
    run = TemporalWorkflow(info.workflow_id, info.run_id, info.namespace, info.task_queue)
    body = ask.request(default_key=f"temporal:{info.workflow_id}:{seq}", run=run)
    server_url, api_key = ask.server_url, ask.api_key
    creating = workflow.start_activity(
        create_task,
        CreateTaskInput(body.model_dump(mode="json", exclude_none=True), server_url, api_key),
        start_to_close_timeout=_ACTIVITY_TIMEOUT,
        retry_policy=_RETRY,
    )
    try:
        # Shielded: a cancelled workflow still needs the task id to cancel the task.
        view_json = await asyncio.shield(creating)
    except asyncio.CancelledError:
        view_json = await creating
        await _cancel(view_json["id"], "workflow cancelled", server_url, api_key)
        raise
    view = TaskView.model_validate(view_json)
    shown = shown_of(body)
    if view.status.is_terminal:
        # A task found again by its key that ended before this run started waiting.
        await _check_receipt(view.id, _poll_of(view), shown)
        return _outcome(view, ask)

    remaining = (view.timeout_at - workflow.now()).total_seconds()
    try:
        await workflow.wait_condition(
            lambda: view.id in state.events,
            timeout=max(1.0, remaining) + _TIMER_GRACE_SECONDS,
            timeout_summary=f"awaithumans {view.id}",
        )
    except TimeoutError:
        final = await _cancel(view.id, "timed out in the workflow", server_url, api_key)
        if final.status is TaskStatus.CANCELLED:
            # Our own cancel: the timeout, as the caller asked it handled.
            return timed_out(
                ask.on_timeout,
                ask.response_schema,
                task=ask.task,
                task_id=view.id,
                timeout_seconds=ask.timeout_seconds,
            )
        await _check_receipt(final.id, _poll_of(final), shown)
        return _outcome(final, ask)
    except asyncio.CancelledError:
        await _cancel(view.id, "workflow cancelled", server_url, api_key)
        raise
    event = PollResponse.model_validate(state.events[view.id])
    # The signal is the webhook's data, receipt included; any other outcome it brings (a
    # timeout's default, a cancel) is confirmed with the server.
    await _check_receipt(view.id, event, shown)
    await _confirm_outcome(view.id, event, server_url, api_key)
    answer = outcome_of(
        event,
        task=ask.task,
        task_id=view.id,
        timeout_seconds=ask.timeout_seconds,
        response_schema=ask.response_schema,
        on_timeout=ask.on_timeout,
    )
    assert answer is not None  # only terminal events are recorded
    return answer


async def _cancel(
    task_id: str, reason: str, server_url: str | None, api_key: str | None
) -> TaskView:
    # Shielded so a second cancellation request cannot interrupt the clean-up itself.
    result = await asyncio.shield(
        workflow.execute_activity(
            cancel_task,
            CancelTaskInput(task_id, reason, server_url, api_key),
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_RETRY,
        )
    )
    return TaskView.model_validate(result)


def _poll_of(view: TaskView) -> PollResponse:
    return PollResponse(status=view.status, response=view.response, receipt=view.receipt)


async def _check_receipt(task_id: str, poll: PollResponse, shown: str | None) -> None:
    """Check a completed answer's receipt on the worker (``check_receipt``, a local activity:
    the sandbox reads no environment and loads no crypto, and a replay reuses the result).

    Raises:
        ReceiptInvalidError: The worker has ``AWAITHUMANS_RECEIPT_PUBLIC_KEY`` set and the
            receipt does not prove this answer (as ``await_human`` outside an engine).
    """
    if poll.status is not TaskStatus.COMPLETED or not workflow.patched(_RECEIPT_PATCH):
        return
    await _run_check(
        task_id, CheckReceiptInput(task_id, poll.response, poll.receipt, shown), _CHECK_RETRY
    )


async def _confirm_outcome(
    task_id: str, poll: PollResponse, server_url: str | None, api_key: str | None
) -> None:
    """With a receipt key on the worker, a signalled outcome that is not an answer must be
    the server's (``check_receipt`` reads the task back): receipts sign answers only.

    Raises:
        ReceiptInvalidError: ``reason="mismatch"``: the server has another status, or
            timed the task out with another default.
    """
    if poll.status is TaskStatus.COMPLETED or not workflow.patched(_OUTCOME_PATCH):
        return
    check = CheckReceiptInput(
        task_id, poll.response, None, status=poll.status.value, server_url=server_url,
        api_key=api_key,
    )  # fmt: skip
    # It reads the server: retried as long as the create is while the server is down.
    await _run_check(task_id, check, _RETRY)


async def _run_check(task_id: str, check: CheckReceiptInput, retry: RetryPolicy) -> None:
    try:
        await workflow.execute_local_activity(
            check_receipt, check, start_to_close_timeout=_ACTIVITY_TIMEOUT, retry_policy=retry
        )
    except ActivityError as err:
        cause = err.cause
        if not (isinstance(cause, ApplicationError) and cause.type == ErrorCode.RECEIPT_INVALID):
            raise
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        raise ReceiptInvalidError(
            str(details.get("message") or cause.message),
            reason=str(details.get("reason") or "signature"),
            task_id=details.get("task_id") or task_id,
        ) from None


def _outcome(view: TaskView, ask: Ask[R]) -> R:
    answer = view_outcome(view, ask.response_schema, ask.on_timeout)
    if answer is None:  # the cancel activity returns only terminal tasks
        return timed_out(
            ask.on_timeout,
            ask.response_schema,
            task=view.task,
            task_id=view.id,
            timeout_seconds=view.timeout_seconds,
        )
    return answer


def to_application_error(err: AwaitHumansError) -> ApplicationError:
    """The Temporal failure for an awaithumans error: non-retryable, ``type`` = its code.

    Use it where a workflow catches an error to re-raise it as a workflow failure::

        except TaskCancelledError as err:
            raise to_application_error(err) from err
    """
    details: dict[str, Any] = {"code": err.code, "message": err.message}
    for name in ("task_id", "reason"):  # reason: a ReceiptInvalidError's
        value = getattr(err, name, None)
        if value is not None:
            details[name] = value
    return ApplicationError(str(err), details, type=err.code, non_retryable=True)
