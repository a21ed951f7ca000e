"""An answer given in the engine's own UI (Prefect's, LangChain's Agent Inbox): put it on
the awaithumans task too, so the record and the run agree on what was decided."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from awaithumans.core._await import poll_of
from awaithumans.core._client import TaskClient
from awaithumans.core._codes import ErrorCode
from awaithumans.core._errors import (
    AwaitHumansError,
    InvalidRequestError,
    PermissionDeniedError,
)
from awaithumans.core._wire import (
    MAX_POLL_SECONDS,
    CreateTaskRequest,
    PollResponse,
    TaskStatus,
    TaskView,
)


def names_who_answers(body: CreateTaskRequest) -> bool:
    """The task says who may answer it (approvers, or several approvals): an answer given
    where nobody is identified cannot stand for theirs."""
    return bool(body.approvers) or body.approvals_required > 1


async def record_answer(
    client: TaskClient,
    view: TaskView,
    response: dict[str, Any],
    where: str,
    *,
    restricted: bool,
) -> PollResponse:
    """Complete the task with ``response``, given in ``where`` (e.g. "Prefect's UI").

    If the task was answered (or ended) in awaithumans meanwhile, that outcome stands and is
    returned. A task with a verifier checks the answer first (and after a rejection takes the
    next answer in awaithumans): this waits for the task's end. A credential that may not
    answer at all (an agent key: ``FORBIDDEN``) closes the task instead, saying where it was
    answered, and the answer given there is returned, unless the task is ``restricted``
    (:func:`names_who_answers`): then nobody it names gave that answer, and the refusal is
    raised, as is every other refusal (``NOT_AN_APPROVER``, a revoked key's 401): failing
    closed leaves the task open for the people it names.
    """
    try:
        recorded = poll_of(await client.complete_task(view.id, response))
        deadline = time.monotonic() + max(0.0, view.timeout_at.timestamp() - time.time()) + 30
        while not recorded.status.is_terminal:
            recorded = await client.poll(view.id, wait=MAX_POLL_SECONDS, deadline=deadline)
        return recorded
    except PermissionDeniedError as exc:
        if restricted or exc.code != ErrorCode.FORBIDDEN:
            raise
        with contextlib.suppress(AwaitHumansError):
            await client.cancel_task(view.id, reason=f"answered in {where}")
        return PollResponse(status=TaskStatus.COMPLETED, response=response)
    except InvalidRequestError as exc:
        if exc.code != ErrorCode.TASK_ALREADY_TERMINAL:
            raise
        return poll_of(await client.get_task(view.id))
