"""``await_human`` for Prefect flows: create the task, then pause or suspend the run.

Paused (the default), the flow's process stays up and Prefect shows the run as Paused with
the task as its expected input; the process also long-polls the task, so the human's answer
resumes the run with no relay at all (a relay, if configured, races it harmlessly).
Suspended (``suspend=True``), the process exits: nothing runs while the human thinks, and
the relay's resume makes Prefect run the flow again from its deployment. That new run
reaches the same call, whose task is found by its idempotency key, already answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from datetime import timedelta
from typing import Any, Literal, TypeVar, cast

from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run, asuspend_flow_run
from prefect.logging import get_run_logger
from pydantic import BaseModel

from awaithumans.adapters._elsewhere import names_who_answers, record_answer
from awaithumans.adapters._receipts import check_answer
from awaithumans.adapters._relay import Resumed
from awaithumans.adapters.prefect._resume import Keyset, resume_paused_run
from awaithumans.adapters.prefect._shared import decision_model, pause_key, run_input
from awaithumans.core._ask import Ask, Assignee, RejectionPolicy, VerifierConfig
from awaithumans.core._await import create_task, outcome_of, poll_of
from awaithumans.core._client import TaskClient
from awaithumans.core._discovery import resolve_server
from awaithumans.core._errors import (
    ConfigurationError,
    InvalidResumeError,
    RetryLaterError,
)
from awaithumans.core._receipts import receipt_check
from awaithumans.core._runs import PrefectPause
from awaithumans.core._sync import blocking
from awaithumans.core._wire import MAX_POLL_SECONDS, PollResponse, TaskStatus, TaskView

R = TypeVar("R", bound=BaseModel)

log = logging.getLogger("awaithumans.prefect")

# Prefect's pause ends this long after the task's own deadline. The task's timeout is the
# record (audit row, webhook, dashboard), so it should reach the flow first; Prefect's timer
# is the backstop for an awaithumans server that cannot be reached.
PAUSE_GRACE_SECONDS = 30
# Where the per-run call counter lives: Prefect builds a new FlowRunContext for every run
# of the flow (also the run after a suspend), so the count restarts with the code.
_COUNTER = "awaithumans"


def _flow_run(suspend: bool) -> FlowRunContext:
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise ConfigurationError("awaithumans.adapters.prefect.await_human must run inside a flow")
    if suspend and TaskRunContext.get() is not None:
        raise ConfigurationError("suspend=True works in the flow itself, not inside a task")
    return context


def _call_key(context: FlowRunContext, key: str | None) -> str:
    if key is not None:
        return key
    counters = context.observed_flow_pauses
    index = counters.get(_COUNTER, 0)
    counters[_COUNTER] = index + 1
    return str(index)


def _prefect_timeout(view: TaskView) -> int:
    left = view.timeout_at.timestamp() - time.time()
    return max(1, math.ceil(left)) + PAUSE_GRACE_SECONDS


def _description(view: TaskView, review_url: str) -> str:
    return (
        f"**{view.task}**\n\n"
        f"Waiting for a human in awaithumans: {review_url}\n\n"
        "Answering here works too: fill in `response`; the awaithumans task is completed"
        " with it."
    )


async def _watch_and_resume(
    client: TaskClient, view: TaskView, pause: PrefectPause, deadline: float
) -> Keyset | None:
    """Long-poll the task; once it is final, resume this (paused) run with its outcome.

    Returns the pause's input keyset once the run is running again (resumed here or by a
    relay), so the caller can stop waiting for Prefect's next poll; None if Prefect refused.
    """
    while True:
        poll = await client.poll(view.id, wait=MAX_POLL_SECONDS, deadline=deadline)
        if poll.status.is_terminal:
            break
    outcome = run_input(view.id, poll.status.value, poll.response, poll.verification_attempt)
    attempt = 0
    async with get_client() as prefect:
        while True:
            try:
                result, keyset = await resume_paused_run(prefect, pause, outcome)
            except RetryLaterError:
                # Not paused yet (we are between the create and the pause), or Prefect is
                # briefly unreachable: soon.
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
                attempt += 1
                continue
            if result.outcome in (Resumed.RESUMED, Resumed.ALREADY):
                return keyset
            log.warning("resuming flow run %s for %s: %s %s", pause.flow_run_id, view.id,
                        result.outcome.value, result.reason or "")  # fmt: skip
            return None


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
    suspend: bool = False,
    key: str | None = None,
    poll_interval: float = 1.0,
) -> R:
    """Ask a human from inside a Prefect flow; the run pauses (or suspends) until answered.

    The shared parameters are those of :class:`~awaithumans.core.Ask`. Here
    ``timeout_seconds`` is also Prefect's pause timeout (which ends ``PAUSE_GRACE_SECONDS``
    later, as a backstop), ``idempotency_key`` defaults to ``prefect:{flow_run_id}:{key}``,
    and ``task_metadata`` gets a ``"prefect"`` entry naming the run and its pause, which
    the relay reads. ``callback_url`` is the relay's URL when the server does not resume
    runs itself.

    Args:
        suspend: Suspend the run instead of pausing it: the process exits and the run is
            resumed from its deployment by the server (``AWAITHUMANS_PREFECT_API_URL``) or
            the relay (``awaithumans relay prefect``). Only in the flow itself, not in a task.
        key: Names this ask within the flow run (default: its position, 0, 1, ...). Give
            one when asks run concurrently or the flow's path to them is not deterministic.
        poll_interval: How often, in seconds, the paused run asks Prefect whether it was
            resumed from elsewhere (Prefect's UI, a relay). When this process resumes its
            own run with the answer, it goes on at once.

    Returns:
        The human's answer as a ``response_schema`` instance; after a timeout (the
        server's, or Prefect's backstop), the ``on_timeout`` default when one is given
        (``awaithumans.is_default`` says so).

    Raises:
        TaskTimeoutError: Nobody answered in time (and ``on_timeout="raise"``).
        TaskCancelledError: The task was cancelled.
        VerificationExhaustedError: The verifier rejected every attempt.
        SchemaValidationError: The payload or the answer does not validate.
        ConfigurationError: Called outside a flow run, or ``suspend=True`` inside a task.
        ReceiptInvalidError: ``AWAITHUMANS_RECEIPT_PUBLIC_KEY`` is set and no receipt signed
            by that key proves the answer the run got (read from the server).
    """
    ask = Ask(
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
    return await _ask_in_flow(ask, suspend=suspend, key=key, poll_interval=poll_interval)


async def _ask_in_flow(ask: Ask[R], *, suspend: bool, key: str | None, poll_interval: float) -> R:
    context = _flow_run(suspend)
    assert context.flow_run is not None
    flow_run_id = context.flow_run.id
    call_key = _call_key(context, key)
    pause = PrefectPause(str(flow_run_id), pause_key(call_key))
    body = ask.request(default_key=f"prefect:{flow_run_id}:{call_key}", run=pause)
    # Built before the task exists: a bad key fails the call before anyone is asked.
    check = receipt_check(body)
    target = resolve_server(ask.server_url, ask.api_key)
    async with TaskClient(target.url, target.api_key) as client:
        view, _replayed, review_url = await create_task(client, target.url, body)
        poll = poll_of(view)
        known_receipt = view.receipt
        # Terminal already: the run after a suspend, or a flow retry; the answer is on record.
        if not view.status.is_terminal:
            # In the run's logs, so Prefect's UI says where the human answers.
            get_run_logger().info("Waiting for a human: %s (task %s)", review_url, view.id)
            waits_for = decision_model(ask.response_schema).with_initial_data(
                description=_description(view, review_url), task_id=view.id
            )
            if suspend:
                decision = await asuspend_flow_run(
                    wait_for_input=waits_for, timeout=_prefect_timeout(view), key=pause.pause_key
                )
                poll = await _from_decision(client, view, decision, names_who_answers(body))
            else:
                paused = await _pause(client, view, waits_for, pause, poll_interval)
                # A poll when Prefect's backstop timer ended the pause, else the run input.
                if isinstance(paused, PollResponse):
                    poll = paused
                else:
                    poll = await _from_decision(client, view, paused, names_who_answers(body))
            known_receipt = None
        # The run input holds the outcome only: the receipt is read from the server.
        await check_answer(check, client, view.id, poll, known_receipt, typed=ask.response_schema)
    answer = outcome_of(
        poll,
        task=view.task,
        task_id=view.id,
        timeout_seconds=view.timeout_seconds,
        response_schema=ask.response_schema,
        on_timeout=ask.on_timeout,
    )
    if answer is None:
        raise InvalidResumeError.not_final(view.id, poll.status.value)
    return answer


async def _pause(
    client: TaskClient,
    view: TaskView,
    waits_for: type[Any],
    paused_at: PrefectPause,
    poll_interval: float,
) -> Any:
    timeout = _prefect_timeout(view)
    pause = asyncio.create_task(
        apause_flow_run(
            wait_for_input=waits_for,
            timeout=timeout,
            # Prefect's signature says int; it sleeps with anyio, which takes any number.
            poll_interval=cast(int, poll_interval),
            key=paused_at.pause_key,
        ),
        name=f"awaithumans-pause-{view.id}",
    )
    watcher = asyncio.create_task(
        _watch_and_resume(client, view, paused_at, time.monotonic() + timeout),
        name=f"awaithumans-watch-{view.id}",
    )
    try:
        await asyncio.wait({pause, watcher}, return_when=asyncio.FIRST_COMPLETED)
        keyset = None
        if not pause.done() and not watcher.cancelled() and watcher.exception() is None:
            keyset = watcher.result()
        if keyset is not None:
            # The run is running again with its input saved: no need to sit out the rest
            # of Prefect's poll interval. Load the input as the pause itself would.
            pause.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pause
            get_run_logger().info("Resuming flow run execution with the human's answer.")
            return await waits_for.aload(keyset)
        return await pause
    except FlowPauseTimeout:
        # The backstop fired: the server never said. The human can no longer answer.
        return await _backstop(client, view)
    finally:
        for left in (watcher, pause):
            if not left.done():
                left.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(watcher, pause, return_exceptions=True)


async def _backstop(client: TaskClient, view: TaskView) -> PollResponse:
    """Prefect's pause timed out before the server's word came: close the task and time
    out (the caller's ``on_timeout`` decides how); an outcome that landed meanwhile stands."""
    final: TaskView | None = None
    with contextlib.suppress(Exception):
        final = await client.cancel_task(view.id, reason="the Prefect pause timed out")
    if final is None:
        with contextlib.suppress(Exception):
            final = await client.get_task(view.id, deadline=time.monotonic() + 5)
    if final is not None and final.status.is_terminal and final.status is not TaskStatus.CANCELLED:
        return poll_of(final)
    # Cancelled by us just now, or the server is unreachable: the timeout itself.
    return PollResponse(status=TaskStatus.TIMED_OUT)


async def _from_decision(
    client: TaskClient, view: TaskView, decision: Any, restricted: bool
) -> PollResponse:
    if decision.task_id != view.id:
        raise InvalidResumeError.task_mismatch(decision.task_id, view.id)
    response = decision.response.model_dump(mode="json") if decision.response else None
    if decision.answered_in == "prefect" and decision.status == "completed":
        if response is None:
            raise InvalidResumeError.without_response(view.id)
        return await record_answer(client, view, response, "Prefect's UI", restricted=restricted)
    return PollResponse(
        status=TaskStatus(decision.status),
        response=response,
        verification_attempt=decision.verification_attempt,
    )


await_human_sync = blocking(
    await_human,
    doc="""Blocking form of :func:`await_human`, for ``def`` flows; same arguments and errors.""",
)
