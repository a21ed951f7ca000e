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

from awaithumans.adapters.temporal._shared import (
    CANCEL_ACTIVITY,
    CREATE_ACTIVITY,
    CancelTaskInput,
    CreateTaskInput,
)
from awaithumans.core._client import TaskClient
from awaithumans.core._discovery import resolve_server
from awaithumans.core._errors import (
    AuthenticationError,
    AwaitHumansError,
    IdempotencyConflictError,
    InvalidRequestError,
    SchemaValidationError,
    ServerUnreachableError,
)
from awaithumans.core._wire import CreateTaskRequest

# Each attempt gives up well inside the activity's start-to-close timeout (30 s), so a
# server that is down surfaces as a retryable attempt failure instead of a hard timeout.
_ATTEMPT_WINDOW_SECONDS = 20.0

# Retrying these cannot help: the request or the credential is wrong.
_FINAL = (AuthenticationError, IdempotencyConflictError, SchemaValidationError, InvalidRequestError)


def _final(err: AwaitHumansError) -> ApplicationError:
    return ApplicationError(str(err), type=err.code, non_retryable=True)


@activity.defn(name=CREATE_ACTIVITY)
async def create_task(arg: CreateTaskInput) -> dict[str, Any]:
    """Create the task (or find it again by idempotency key) and return its view as JSON.

    Raises:
        ApplicationError: Non-retryable, ``type`` set to the error code, when the server
            refuses the request; retryable when the server could not be reached.
    """
    body = CreateTaskRequest.model_validate(arg.body)
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


def activities() -> Sequence[Callable[..., Any]]:
    """The activities to register on every worker that runs workflows using ``await_human``."""
    return [create_task, cancel_task]
