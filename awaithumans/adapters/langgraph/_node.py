"""``await_human`` for LangGraph nodes: create the task, then ``interrupt()`` until answered.

LangGraph resumes an interrupted node by running it again from the top, and ``interrupt()``
returns the resume value on that second run. So the task must come out of the first and
every later run identical: its idempotency key is derived from the thread, the node's
checkpoint namespace (unique per node execution step, and per ``Send``) and the call's
position within the node, and the server replays the task instead of creating another.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any, Literal, TypeVar

from langgraph.config import get_config
from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from awaithumans.adapters._elsewhere import names_who_answers, record_answer
from awaithumans.adapters._receipts import check_answer
from awaithumans.adapters.langgraph._shared import INTERRUPT_KEY
from awaithumans.adapters.langgraph.inbox import (
    AgentInbox,
    decision_of,
    inbox_interrupt,
    inbox_response,
)
from awaithumans.core._ask import (
    RAISE,
    Ask,
    Assignee,
    RejectionPolicy,
    VerifierConfig,
    error_list,
    summary,
)
from awaithumans.core._await import create_task, outcome_of
from awaithumans.core._client import TaskClient
from awaithumans.core._discovery import ServerTarget, resolve_server
from awaithumans.core._errors import (
    ConfigurationError,
    InvalidResumeError,
    SchemaValidationError,
)
from awaithumans.core._receipts import DecisionCheck, receipt_check
from awaithumans.core._runs import LangGraphThread
from awaithumans.core._sync import blocking
from awaithumans.core._wire import CreateTaskRequest, PollResponse, TaskStatus, TaskView

R = TypeVar("R", bound=BaseModel)

# Per-execution call counter, kept in the node's own ``configurable`` dict: LangGraph builds
# a fresh one for every execution of a task, so the count restarts at 0 each time the node
# is re-run on resume, and parallel (Send) tasks never share it. Retry-policy attempts are
# not covered by the tests.
_COUNTER_KEY = "__awaithumans_call_index"
_STATUSES = frozenset(s.value for s in TaskStatus)


def _node_identity() -> tuple[LangGraphThread, int]:
    """The node execution this call runs in, and the call's index within it."""
    try:
        configurable = get_config()["configurable"]
    except RuntimeError:
        raise ConfigurationError(
            "awaithumans.adapters.langgraph.await_human must be called inside a LangGraph node"
        ) from None
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        # Without a thread there is no checkpoint to resume, so the interrupt would be lost.
        raise ConfigurationError(
            "await_human needs a graph compiled with a checkpointer and invoked with "
            'config={"configurable": {"thread_id": ...}}'
        )
    index = int(configurable.get(_COUNTER_KEY, 0))
    configurable[_COUNTER_KEY] = index + 1
    return LangGraphThread(str(thread_id), str(configurable.get("checkpoint_ns", ""))), index


def node_idempotency_key(thread_id: str, checkpoint_ns: str, index: int) -> str:
    """The task key for call ``index`` of the node execution ``checkpoint_ns`` in a thread.

    Hashed because nested namespaces can exceed the server's 255-character key limit.
    """
    digest = hashlib.sha256(f"{thread_id}\x1f{checkpoint_ns}\x1f{index}".encode()).hexdigest()
    return f"langgraph:{digest[:48]}"


def _describe(body: CreateTaskRequest, view: TaskView, review_url: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "task_id": view.id,
        "review_url": review_url,
        "task": view.task,
        "timeout_at": view.timeout_at.isoformat(),
    }
    if not body.redact_payload:
        info["payload"] = body.payload
    return {INTERRUPT_KEY: info}


def _outcome_poll(value: Any, view: TaskView) -> PollResponse | None:
    """The task outcome a resume value carries (the webhook's ``data`` shape), else None.

    Raises:
        InvalidResumeError: The outcome is for another task.
    """
    if not (
        isinstance(value, dict)
        and value.get("status") in _STATUSES
        and "response" in value
        and isinstance(value.get("response"), dict | None)
    ):
        return None
    sent_for = value.get("task_id")
    if sent_for is not None and sent_for != view.id:
        # A relay matched the wrong interrupt; answering with it would be silent harm.
        raise InvalidResumeError.task_mismatch(sent_for, view.id)
    return PollResponse(
        status=TaskStatus(value["status"]),
        response=value.get("response"),
        verification_attempt=int(value.get("verification_attempt") or 0),
        default_applied=bool(value.get("default_applied")),
        approvals=value.get("approvals") or [],
        receipt=value.get("receipt") if isinstance(value.get("receipt"), dict) else None,
    )


def answer_from_resume(
    value: Any,
    view: TaskView,
    response_schema: type[R],
    on_timeout: Literal["raise"] | R = RAISE,
) -> R:
    """Turn a resume value into the typed answer, or raise the core's typed error.

    Accepts the webhook's ``data`` object (``{"status": ..., "response": ...}``, as the
    relay sends it), a plain response dict, or an instance of ``response_schema``. A
    timed-out outcome is the ``on_timeout`` default when there is one.

    Raises:
        InvalidResumeError: The value is for another task, or not a final outcome.
    """
    if isinstance(value, response_schema):
        return value
    poll = _outcome_poll(value, view)
    if poll is not None:
        answer = outcome_of(
            poll,
            task=view.task,
            task_id=view.id,
            timeout_seconds=view.timeout_seconds,
            response_schema=response_schema,
            on_timeout=on_timeout,
        )
        if answer is None:
            raise InvalidResumeError.not_final(view.id, poll.status.value)
        return answer
    try:
        return response_schema.model_validate(value)
    except ValidationError as exc:
        raise SchemaValidationError("response", summary(exc), errors=error_list(exc)) from None


async def _check_resume(
    check: DecisionCheck | None, target: ServerTarget, view: TaskView, value: Any
) -> None:
    """The receipt check of the answer the node resumed with (no-op without a key set).

    The relay's resume value carries no receipt (it is checkpointed: kept small and free of
    who answered); the replayed create's view has it, else it is read from the server.
    """
    if check is None:
        return
    poll = _outcome_poll(value, view)
    if poll is None:
        # A bare answer (``Command(resume={...})`` by hand): it must be the signed one.
        given = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        poll = PollResponse(
            status=TaskStatus.COMPLETED, response=given if isinstance(given, dict) else None
        )
    known = view.receipt if view.status is TaskStatus.COMPLETED else None
    async with TaskClient(target.url, target.api_key) as client:
        await check_answer(check, client, view.id, poll, known)


async def _ask_in_node(ask: Ask[R], inbox: AgentInbox | None = None) -> R:
    node, index = _node_identity()
    body = ask.request(
        default_key=node_idempotency_key(node.thread_id, node.checkpoint_ns, index), run=node
    )
    # Built before the task exists: a bad key fails the call before anyone is asked.
    check = receipt_check(body)
    target = resolve_server(ask.server_url, ask.api_key)
    async with TaskClient(target.url, target.api_key) as client:
        view, _replayed, review_url = await create_task(client, target.url, body)
    described = _describe(body, view, review_url)
    if inbox is None:
        # The first run stops here (GraphInterrupt); the resumed run gets the relay's value.
        resumed_with = interrupt(described)
        await _check_resume(check, target, view, resumed_with)
        return answer_from_resume(resumed_with, view, ask.response_schema, ask.on_timeout)
    proposed = inbox.args
    if proposed is None:
        # A redacted payload is not shown in the inbox either.
        proposed = {} if body.redact_payload else body.payload
    resumed_with = interrupt(inbox_interrupt(inbox, described[INTERRUPT_KEY], proposed))
    given = inbox_response(resumed_with)
    if given is not None:
        decision = decision_of(given, inbox, proposed, view.id)
        async with TaskClient(target.url, target.api_key) as client:
            recorded = await record_answer(
                client, view, decision, "the Agent Inbox", restricted=names_who_answers(body)
            )
        resumed_with = recorded.model_dump(mode="json") | {"task_id": view.id}
    await _check_resume(check, target, view, resumed_with)
    return answer_from_resume(resumed_with, view, ask.response_schema, ask.on_timeout)


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
    agent_inbox: AgentInbox | None = None,
) -> R:
    """Ask a human from inside a LangGraph node; the graph pauses until they answer.

    The first run of the node creates the task and calls ``langgraph.types.interrupt`` with
    ``{"awaithumans": {"task_id", "review_url", "task", "payload", "timeout_at"}}`` (no
    ``payload`` when ``redact_payload``). Resume the thread with the task's outcome, usually
    through :func:`~awaithumans.adapters.langgraph.relay_app` fed by the server's webhook to
    ``callback_url``; the node then runs again and this call returns.

    The parameters are those of :class:`~awaithumans.core.Ask`. Here ``idempotency_key``
    defaults to a key derived from the thread, the node's checkpoint namespace and the
    call's position in the node, and ``task_metadata`` gets a ``"langgraph"`` entry naming
    the thread, which the relay reads.

    ``agent_inbox=AgentInbox(action=...)`` interrupts in the shape of LangChain's Agent
    Inbox (``inbox.py``), so that inbox can answer too; use ``InboxDecision`` as the
    ``response_schema``. An answer given there is recorded on the task (completed, or
    cancelled with that reason when the credential may not answer).

    Returns:
        The human's answer as a ``response_schema`` instance (on the resumed run); for a
        timed-out task, the ``on_timeout`` default when one is given
        (``awaithumans.is_default`` says so).

    Raises:
        TaskTimeoutError: Resumed with a timed-out task (and ``on_timeout="raise"``).
        TaskCancelledError: Resumed with a cancelled task.
        VerificationExhaustedError: Resumed after the verifier rejected every attempt.
        SchemaValidationError: The payload or the resumed answer does not validate.
        InvalidResumeError: The resume value belongs to another task or is not final.
        ConfigurationError: Called outside a node, or without a thread id.
        ReceiptInvalidError: ``AWAITHUMANS_RECEIPT_PUBLIC_KEY`` is set and no receipt signed
            by that key proves the answer resumed with (read from the server when needed).
    """
    return await _ask_in_node(
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
        ),
        agent_inbox,
    )


# Sync nodes run in LangGraph's executor threads: the coroutine runs there on a private loop,
# in the node's own context, so ``get_config()`` and ``interrupt()`` see the node's run.
await_human_sync = blocking(
    await_human,
    doc="""Blocking form of :func:`await_human`, for ``def`` nodes; same arguments and errors.""",
)
