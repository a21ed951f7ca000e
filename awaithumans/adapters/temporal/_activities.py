"""The activities that talk to the awaithumans server on the workflow's behalf.

All network I/O of the adapter happens here, outside the workflow sandbox, so the workflow
itself stays deterministic. The server URL and credential are resolved here too (argument >
environment > dev file), so a worker's ``AWAITHUMANS_API_KEY`` never enters the history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from awaithumans.adapters._receipts import check_outcome, configured_keys, confirm_outcome
from awaithumans.adapters.temporal._shared import (
    CANCEL_ACTIVITY,
    CHECK_RECEIPT_ACTIVITY,
    CREATE_ACTIVITY,
    CancelTaskInput,
    CheckReceiptInput,
    CreateTaskInput,
)
from awaithumans.core._client import TaskClient
from awaithumans.core._discovery import resolve_server
from awaithumans.core._errors import (
    AuthenticationError,
    AwaitHumansError,
    IdempotencyConflictError,
    InvalidRequestError,
    MissingExtraError,
    ReceiptInvalidError,
    SchemaValidationError,
    ServerUnreachableError,
)
from awaithumans.core._wire import CreateTaskRequest, PollResponse, TaskStatus

# Each attempt gives up well inside the activity's start-to-close timeout (30 s), so a
# server that is down surfaces as a retryable attempt failure instead of a hard timeout.
_ATTEMPT_WINDOW_SECONDS = 20.0

# Retrying these cannot help: the request or the credential is wrong.
_FINAL = (AuthenticationError, IdempotencyConflictError, SchemaValidationError, InvalidRequestError)


def _final(err: AwaitHumansError) -> ApplicationError:
    return ApplicationError(str(err), type=err.code, non_retryable=True)


def _receipt_failure(err: ReceiptInvalidError | MissingExtraError) -> ApplicationError:
    # The details let the workflow raise the same ReceiptInvalidError (reason, task id).
    details: dict[str, Any] = {"code": err.code, "message": err.message}
    if isinstance(err, ReceiptInvalidError):
        details |= {"reason": err.reason, "task_id": err.task_id}
    return ApplicationError(str(err), details, type=err.code, non_retryable=True)


@activity.defn(name=CREATE_ACTIVITY)
async def create_task(arg: CreateTaskInput) -> dict[str, Any]:
    """Create the task (or find it again by idempotency key) and return its view as JSON.

    Raises:
        ApplicationError: Non-retryable, ``type`` set to the error code, when the server
            refuses the request; retryable when the server could not be reached.
    """
    body = CreateTaskRequest.model_validate(arg.body)
    try:
        # The worker's receipt key, read now: a bad one fails before anyone is asked.
        configured_keys()
    except (ReceiptInvalidError, MissingExtraError) as err:
        raise _receipt_failure(err) from None
    target = resolve_server(arg.server_url, arg.api_key)
    try:
        async with TaskClient(target.url, target.api_key, user_agent="awaithumans-temporal") as c:
            view, _ = await c.create_task(body, deadline=time.monotonic() + _ATTEMPT_WINDOW_SECONDS)
    except _FINAL as err:
        raise _final(err) from None
    except ServerUnreachableError as err:
        raise ApplicationError(str(err), type=err.code) from None
    return view.model_dump(mode="json")


@activity.defn(name=CANCEL_ACTIVITY)
async def cancel_task(arg: CancelTaskInput) -> dict[str, Any]:
    """Cancel the task if it is still open; return its view as JSON either way.

    A task that ended meanwhile (answered just before the workflow's timer fired) is
    returned as it is, so the workflow can still use the answer.
    """
    target = resolve_server(arg.server_url, arg.api_key)
    async with TaskClient(target.url, target.api_key, user_agent="awaithumans-temporal") as c:
        try:
            view = await c.cancel_task(arg.task_id, reason=arg.reason)
        except InvalidRequestError as err:
            if err.status_code != 409:
                raise _final(err) from None
            view = await c.get_task(
                arg.task_id, deadline=time.monotonic() + _ATTEMPT_WINDOW_SECONDS
            )
        except AuthenticationError as err:
            raise _final(err) from None
    return view.model_dump(mode="json")


@activity.defn(name=CHECK_RECEIPT_ACTIVITY)
async def check_receipt(arg: CheckReceiptInput) -> str | None:
    """Check a completed answer's decision receipt with the worker's
    ``AWAITHUMANS_RECEIPT_PUBLIC_KEY``; the workflow runs it as a local activity, so its
    result is recorded and a replay does not check again (nor read the environment).

    An outcome other than an answer (``arg.status``) has no receipt: it is read back from the
    server and must be the server's (a made-up timeout would otherwise hand the workflow any
    "default the server applied").

    Returns:
        The verified receipt's one-line summary, or None when no key is set or the outcome
        is not an answer.

    Raises:
        ApplicationError: Non-retryable, ``type`` ``RECEIPT_INVALID`` (details: code,
            message, reason, task_id), or ``EXTRA_NOT_INSTALLED`` without ``cryptography``;
            retryable when the server could not be reached to confirm an outcome.
    """
    try:
        keys = configured_keys()
        if keys is None:
            return None
        if arg.status != TaskStatus.COMPLETED.value:
            await _confirm(arg)
            return None
        verified = check_outcome(
            keys, arg.task_id, "completed", arg.response, arg.receipt, arg.shown
        )
    except (ReceiptInvalidError, MissingExtraError) as err:
        raise _receipt_failure(err) from None
    return verified.summary() if verified is not None else None


async def _confirm(arg: CheckReceiptInput) -> None:
    """Read the task back and require the outcome ``arg`` states (ReceiptInvalidError)."""
    target = resolve_server(arg.server_url, arg.api_key)
    poll = PollResponse(status=TaskStatus(arg.status), response=arg.response)
    try:
        async with TaskClient(target.url, target.api_key, user_agent="awaithumans-temporal") as c:
            await confirm_outcome(c, arg.task_id, poll)
    except _FINAL as err:
        raise _final(err) from None
    except ServerUnreachableError as err:
        raise ApplicationError(str(err), type=err.code) from None


def activities() -> Sequence[Callable[..., Any]]:
    """The activities to register on every worker that runs workflows using ``await_human``."""
    return [create_task, cancel_task, check_receipt]
