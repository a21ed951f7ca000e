"""``await_human`` for LangGraph nodes: create the task, then ``interrupt()`` until answered.

LangGraph resumes an interrupted node by running it again from the top, and ``interrupt()``
returns the resume value on that second run. So the task must come out of the first and
every later run identical: its idempotency key is derived from the thread, the node's
checkpoint namespace (unique per node execution step, and per ``Send``) and the call's
position within the node, and the server replays the task instead of creating another.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, TypeVar

from langgraph.config import get_config
from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from awaithumans.adapters.langgraph._shared import INTERRUPT_KEY, METADATA_KEY
from awaithumans.core._await import (
    _create_window,
    _Dumpable,
    _errors,
    _summary,
    build_create_request,
    outcome_of,
)
from awaithumans.core._client import TaskClient
from awaithumans.core._discovery import resolve_server
from awaithumans.core._errors import InvalidRequestError, SchemaValidationError
from awaithumans.core._sync import run_blocking
from awaithumans.core._wire import CreateTaskRequest, PollResponse, TaskStatus, TaskView

R = TypeVar("R", bound=BaseModel)
T = TypeVar("T")

# Per-execution call counter, kept in the node's own ``configurable`` dict: LangGraph builds
# a fresh one for every execution of a task, so the count restarts at 0 each time the node
# is re-run on resume, and parallel (Send) tasks never share it. Retry-policy attempts are
# not covered by the tests.
_COUNTER_KEY = "__awaithumans_call_index"
_STATUSES = frozenset(s.value for s in TaskStatus)


def _node_identity() -> tuple[str, str, int]:
    """(thread id, checkpoint namespace, index of this call within the node execution)."""
    try:
        configurable = get_config()["configurable"]
    except RuntimeError:
        raise RuntimeError(
            "awaithumans.adapters.langgraph.await_human must be called inside a LangGraph node"
        ) from None
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        # Without a thread there is no checkpoint to resume, so the interrupt would be lost.
        raise RuntimeError(
            "await_human needs a graph compiled with a checkpointer and invoked with "
            'config={"configurable": {"thread_id": ...}}'
        )
    index = int(configurable.get(_COUNTER_KEY, 0))
    configurable[_COUNTER_KEY] = index + 1
    return str(thread_id), str(configurable.get("checkpoint_ns", "")), index


def node_idempotency_key(thread_id: str, checkpoint_ns: str, index: int) -> str:
    """The task key for call ``index`` of the node execution ``checkpoint_ns`` in a thread.

    Hashed because nested namespaces can exceed the server's 255-character key limit.
    """
    digest = hashlib.sha256(f"{thread_id}\x1f{checkpoint_ns}\x1f{index}".encode()).hexdigest()
    return f"langgraph:{digest[:48]}"


def _prepare(
    kwargs: dict[str, Any], response_schema: type[BaseModel]
) -> tuple[CreateTaskRequest, str | None, str | None]:
    thread_id, checkpoint_ns, index = _node_identity()
    metadata = dict(kwargs.pop("task_metadata") or {})
    metadata[METADATA_KEY] = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
    server_url = kwargs.pop("server_url")
    api_key = kwargs.pop("api_key")
    key = kwargs.pop("idempotency_key") or node_idempotency_key(thread_id, checkpoint_ns, index)
    body = build_create_request(
        **kwargs,
        response_schema=response_schema,
        idempotency_key=key,
        task_metadata=metadata,
    )
    return body, server_url, api_key


async def _create(
    body: CreateTaskRequest, server_url: str | None, api_key: str | None
) -> tuple[TaskView, str]:
    target = resolve_server(server_url, api_key)
    async with TaskClient(target.url, target.api_key) as client:
        deadline = time.monotonic() + min(_create_window(), float(body.timeout_seconds))
        view, _replayed = await client.create_task(body, deadline=deadline)
    return view, view.review_url or f"{target.url}/task?id={view.id}"


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


def answer_from_resume(value: Any, view: TaskView, response_schema: type[R]) -> R:
    """Turn a resume value into the typed answer, or raise the core's typed error.

    Accepts the webhook's ``data`` object (``{"status": ..., "response": ...}``, as the
    resumer sends it), a plain response dict, or an instance of ``response_schema``.
    """
    if isinstance(value, response_schema):
        return value
    if (
        isinstance(value, dict)
        and value.get("status") in _STATUSES
        and "response" in value
        and isinstance(value.get("response"), dict | None)
    ):
        sent_for = value.get("task_id")
        if sent_for is not None and sent_for != view.id:
            # A resumer matched the wrong interrupt; answering with it would be silent harm.
            raise InvalidRequestError(
                f"Resume value is for task {sent_for!r}, but this interrupt waits for {view.id!r}.",
                code="RESUME_TASK_MISMATCH",
            )
        poll = PollResponse(
            status=TaskStatus(value["status"]),
            response=value.get("response"),
            verification_attempt=int(value.get("verification_attempt") or 0),
        )
        answer = outcome_of(
            poll,
            task=view.task,
            task_id=view.id,
            timeout_seconds=view.timeout_seconds,
            response_schema=response_schema,
        )
        if answer is None:
            raise InvalidRequestError(
                f"Cannot resume task {view.id!r} with non-final status {poll.status.value!r}.",
                code="RESUME_NOT_FINAL",
            )
        return answer
    try:
        return response_schema.model_validate(value)
    except ValidationError as exc:
        raise SchemaValidationError("response", _summary(exc), errors=_errors(exc)) from None


def await_human(
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
    """Ask a human from inside a (sync) LangGraph node; the graph pauses until they answer.

    The first run of the node creates the task and calls ``langgraph.types.interrupt`` with
    ``{"awaithumans": {"task_id", "review_url", "task", "payload", "timeout_at"}}`` (no
    ``payload`` when ``redact_payload``). Resume the thread with the task's outcome, usually
    through :func:`~awaithumans.adapters.langgraph.resumer.resume_from_event` fed by the
    server's webhook to ``callback_url``; the node then runs again and this call returns.

    Args:
        task: The question, as the human sees it.
        payload_schema: Pydantic model describing ``payload``.
        payload: What the human needs to decide.
        response_schema: Pydantic model of the answer.
        timeout_seconds: How long the human has (60 s to 30 days).
        idempotency_key: Overrides the key derived from thread, namespace and call index.
        notify: Notification routes.
        assign_to: An email, several emails, or a structured assignment.
        verifier: A verifier config; runs on the server.
        redact_payload: Hide the payload from channels and from the interrupt value.
        task_metadata: Free-form JSON; ``{"langgraph": {"thread_id", "checkpoint_ns"}}`` is
            added so a resumer knows which thread to resume.
        callback_url: Where the server posts the signed webhook (the resumer's URL).
        server_url: The awaithumans server (else discovered as in the core).
        api_key: The credential (else discovered as in the core).

    Returns:
        The human's answer as a ``response_schema`` instance (on the resumed run).

    Raises:
        TaskTimeoutError: Resumed with a timed-out task.
        TaskCancelledError: Resumed with a cancelled task.
        VerificationExhaustedError: Resumed after the verifier rejected every attempt.
        SchemaValidationError: The payload or the resumed answer does not validate.
        InvalidRequestError: The resume value belongs to another task or is not final.
        RuntimeError: Called outside a node, or without a thread id.
    """
    body, url, key = _prepare(
        {
            "task": task,
            "payload_schema": payload_schema,
            "payload": payload,
            "timeout_seconds": timeout_seconds,
            "idempotency_key": idempotency_key,
            "notify": notify,
            "assign_to": assign_to,
            "verifier": verifier,
            "redact_payload": redact_payload,
            "task_metadata": task_metadata,
            "callback_url": callback_url,
            "server_url": server_url,
            "api_key": api_key,
        },
        response_schema,
    )
    # Sync nodes run in LangGraph's executor threads, normally without a loop.
    view, review_url = run_blocking(_create(body, url, key))
    # interrupt() must run here, in the node's own context, not on the helper loop.
    return answer_from_resume(interrupt(_describe(body, view, review_url)), view, response_schema)


async def await_human_async(
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
    """Async form of :func:`await_human`, for ``async def`` nodes; same arguments and errors."""
    body, url, key = _prepare(
        {
            "task": task,
            "payload_schema": payload_schema,
            "payload": payload,
            "timeout_seconds": timeout_seconds,
            "idempotency_key": idempotency_key,
            "notify": notify,
            "assign_to": assign_to,
            "verifier": verifier,
            "redact_payload": redact_payload,
            "task_metadata": task_metadata,
            "callback_url": callback_url,
            "server_url": server_url,
            "api_key": api_key,
        },
        response_schema,
    )
    view, review_url = await _create(body, url, key)
    return answer_from_resume(interrupt(_describe(body, view, review_url)), view, response_schema)
