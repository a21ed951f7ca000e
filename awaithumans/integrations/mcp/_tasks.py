"""``ask_human`` as a task of the 2025-11-25 protocol: a task-augmented call returns at once.

A client that negotiated 2025-11-25 and sends ``tools/call`` for ``ask_human`` with a
``task`` field gets a ``CreateTaskResult`` as soon as the awaithumans task exists, then
drives it with ``tasks/get`` (status, with the review URL), ``tasks/result`` (blocks until
the task is final, then the very ``CallToolResult`` the plain call would have returned),
``tasks/list`` and ``tasks/cancel`` (cancels the awaithumans task). The MCP task id *is* the
awaithumans task id, so nothing is kept here that the awaithumans server does not hold: an
MCP server restarted in between still serves the task.

The SDK (2.3) ships the tasks types but neither serves nor routes them: ``tasks/*`` are
absent from its method maps, and its result sieve validates every ``tools/call`` result as a
``CallToolResult``, which a ``CreateTaskResult`` is not. So this is a server middleware (the
SDK's documented seam around every request): it answers the task methods itself and
returns its results as wire dicts, which the runner passes through as a short-circuit's own.
On any other protocol version (2026-07-28 dropped tasks from the core protocol) and for
calls without ``task`` it steps aside: those clients get ``waiting`` and ``get_answer``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    CallToolRequestParams,
    CallToolResult,
    CancelTaskRequestParams,
    GetTaskPayloadRequestParams,
    GetTaskRequestParams,
    PaginatedRequestParams,
)
from mcp_types import methods as wire
from pydantic import BaseModel, ValidationError

from awaithumans.core._ask import summary
from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import TaskStatus, TaskView
from awaithumans.integrations.mcp._questions import Desk, ToolRefusal, question
from awaithumans.integrations.mcp._results import tool_refusal, tool_result

#: The one protocol version with ``tasks/*`` in its core.
TASKS_VERSION = "2025-11-25"
#: The tool that runs as a task; ``get_answer`` answers at once and never needs to.
TASK_TOOL = "ask_human"
#: What ``tasks/result`` carries in ``_meta`` to name its task (the spec requires it).
RELATED_TASK_KEY = "io.modelcontextprotocol/related-task"
#: How often a client should ask ``tasks/get``: people answer in minutes, not milliseconds.
POLL_INTERVAL_MS = 5000
#: ``tasks/list``: tasks per page, and how many of this process's tasks it remembers.
PAGE_SIZE = 50
REMEMBERED = 1000
# ``tasks/result`` waits in long calls of this length until the task is final.
_RESULT_CHUNK_SECONDS = 60.0

_CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}


class TaskAugmentation:
    """The server middleware serving ``ask_human`` as a task (see the module's docstring).

    Args:
        desk: Where questions go; ``tasks/result`` waits through it in long calls.
    """

    def __init__(self, desk: Desk) -> None:
        self._desk = desk
        # The tasks this process opened for task-augmented calls, oldest first: what
        # ``tasks/list`` lists (the awaithumans server holds them; this holds only ids).
        self._opened: dict[str, None] = {}

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method == "initialize":
            return _advertise(await call_next(ctx))
        if ctx.protocol_version != TASKS_VERSION:
            return await call_next(ctx)
        params: Mapping[str, Any] = ctx.params or {}
        if ctx.method == "tools/list":
            return _mark_task_tool(await call_next(ctx))
        if ctx.method == "tools/call" and params.get("task") is not None:
            return await self._start(_parse(CallToolRequestParams, params))
        if ctx.method == "tasks/get":
            task_id = _parse(GetTaskRequestParams, params).task_id
            return task_fields(*await self._look(task_id))
        if ctx.method == "tasks/result":
            return await self._result(_parse(GetTaskPayloadRequestParams, params).task_id)
        if ctx.method == "tasks/list":
            return await self._list(_parse(PaginatedRequestParams, params).cursor)
        if ctx.method == "tasks/cancel":
            return await self._cancel(_parse(CancelTaskRequestParams, params).task_id)
        return await call_next(ctx)

    async def _start(self, call: CallToolRequestParams) -> dict[str, Any]:
        if call.name != TASK_TOOL:
            # The spec: a tool without taskSupport called as a task is refused.
            raise MCPError(code=METHOD_NOT_FOUND, message=f"{call.name!r} does not run as a task")
        try:
            args = _arguments(call.arguments)
            view, review_url = await self._desk.open(
                question(
                    task=args.task,
                    payload=args.payload,
                    response_schema=args.response_schema,
                    notify=args.notify,
                    assign_to=args.assign_to,
                    timeout_seconds=args.timeout_seconds,
                    idempotency_key=args.idempotency_key,
                )
            )
        except ToolRefusal as refusal:
            # No task exists: the plain error result, as a server without task support
            # would answer (the spec lets a receiver process a task-augmented call normally).
            return _call_result(tool_refusal(refusal))
        self._opened.pop(view.id, None)
        self._opened[view.id] = None
        while len(self._opened) > REMEMBERED:
            del self._opened[next(iter(self._opened))]
        return {"task": task_fields(view, review_url)}

    async def _look(self, task_id: str) -> tuple[TaskView, str]:
        try:
            return await self._desk.look(task_id)
        except ToolRefusal as refusal:
            raise _protocol_error(refusal) from None

    async def _result(self, task_id: str) -> dict[str, Any]:
        waiter = dataclasses.replace(self._desk, wait_seconds=_RESULT_CHUNK_SECONDS)
        while True:
            try:
                outcome = await waiter.answer(task_id)
            except ToolRefusal as refusal:
                if refusal.code == ErrorCode.TASK_NOT_FOUND:
                    raise _protocol_error(refusal) from None
                # What get_answer would have returned at this point.
                return _call_result(tool_refusal(refusal), task_id)
            if outcome["status"] != "waiting":
                return _call_result(tool_result(outcome), task_id)

    async def _list(self, cursor: str | None) -> dict[str, Any]:
        newest_first = list(reversed(self._opened))
        try:
            start = int(cursor) if cursor else 0
        except ValueError:
            raise MCPError(code=INVALID_PARAMS, message=f"Invalid cursor: {cursor!r}") from None
        if not 0 <= start <= len(newest_first):
            raise MCPError(code=INVALID_PARAMS, message=f"Invalid cursor: {cursor!r}")
        page = newest_first[start : start + PAGE_SIZE]
        looked = await asyncio.gather(*(self._look(task_id) for task_id in page))
        listed: dict[str, Any] = {"tasks": [task_fields(v, url) for v, url in looked]}
        if start + PAGE_SIZE < len(newest_first):
            listed["nextCursor"] = str(start + PAGE_SIZE)
        return listed

    async def _cancel(self, task_id: str) -> dict[str, Any]:
        try:
            view, review_url = await self._desk.cancel(task_id, "cancelled by the MCP client")
        except ToolRefusal as refusal:
            raise _protocol_error(refusal) from None
        return task_fields(view, review_url)


class AskArguments(BaseModel):
    """``ask_human``'s arguments, typed as its signature in ``_server`` types them: the SDK
    checks them so before a plain call, and a task-augmented one bypasses the SDK's tool."""

    task: str
    payload: Any
    response_schema: Any
    notify: list[str] | None = None
    assign_to: str | list[str] | None = None
    timeout_seconds: int | None = None
    idempotency_key: str | None = None


def _arguments(arguments: dict[str, Any] | None) -> AskArguments:
    try:
        return AskArguments.model_validate(arguments or {})
    except ValidationError as exc:
        raise ToolRefusal(ErrorCode.VALIDATION_ERROR, f"ask_human: {summary(exc)}") from None


def _advertise(result: HandlerResult) -> HandlerResult:
    """The initialize result with the ``tasks`` capability, on a 2025-11-25 connection."""
    if isinstance(result, dict) and result.get("protocolVersion") == TASKS_VERSION:
        capabilities = dict(result.get("capabilities") or {})
        capabilities["tasks"] = _CAPABILITY
        return {**result, "capabilities": capabilities}
    return result


def _mark_task_tool(result: HandlerResult) -> HandlerResult:
    """``tools/list`` with ``execution.taskSupport = "optional"`` on ``ask_human``."""
    if not isinstance(result, dict):
        return result
    tools = [
        {**tool, "execution": {"taskSupport": "optional"}}
        if tool.get("name") == TASK_TOOL
        else tool
        for tool in result.get("tools", [])
    ]
    return {**result, "tools": tools}


def task_fields(view: TaskView, review_url: str) -> dict[str, Any]:
    """A task as the protocol shows it: in ``CreateTaskResult.task``, ``tasks/list``, and
    flat as the result of ``tasks/get`` and ``tasks/cancel``."""
    status, message = _status(view, review_url)
    return {
        "taskId": view.id,
        "status": status,
        "statusMessage": message,
        "createdAt": view.created_at.isoformat(),
        "lastUpdatedAt": view.updated_at.isoformat(),
        # Kept as long as the awaithumans server keeps the task: no expiry of ours.
        "ttl": None,
        "pollInterval": POLL_INTERVAL_MS,
    }


def _status(view: TaskView, review_url: str) -> tuple[str, str]:
    """The MCP task status of an awaithumans task, and a line for people about it.

    No answer (timed out, every answer failed the verifier) is ``failed``: the request did
    not get what it asked for, though ``tasks/result`` still returns the plain call's result.
    """
    status = view.status
    if status is TaskStatus.COMPLETED:
        return "completed", f"A person answered ({review_url}); tasks/result has the answer."
    if status is TaskStatus.CANCELLED:
        return "cancelled", f"The task was cancelled before anyone answered ({review_url})."
    if status is TaskStatus.TIMED_OUT:
        return "failed", (
            f"Nobody answered within the task's {view.timeout_seconds} s ({review_url})."
        )
    if status is TaskStatus.VERIFICATION_EXHAUSTED:
        return "failed", f"Every answer given failed the task's verifier ({review_url})."
    return "working", f"Waiting for a person to answer at {review_url} (task {status.value})."


def _call_result(result: CallToolResult, task_id: str | None = None) -> dict[str, Any]:
    """A ``CallToolResult`` shaped for the 2025-11-25 wire by the SDK's own sieve, with the
    related-task ``_meta`` when it answers ``tasks/result``."""
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    shaped = wire.serialize_server_result("tools/call", TASKS_VERSION, dumped)
    if task_id is not None:
        shaped["_meta"] = {**shaped.get("_meta", {}), RELATED_TASK_KEY: {"taskId": task_id}}
    return shaped


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], params: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(dict(params), by_name=False)
    except ValidationError as exc:
        raise MCPError(
            code=INVALID_PARAMS, message=f"Invalid params: {exc.error_count()} error(s)"
        ) from None


def _protocol_error(refusal: ToolRefusal) -> MCPError:
    """A task method's failure as a JSON-RPC error: an unknown task is invalid params (the
    spec's code for a bad taskId), the rest internal errors; the stable code in ``data``."""
    code = INVALID_PARAMS if refusal.code in _CALLER_FAULTS else INTERNAL_ERROR
    return MCPError(code=code, message=refusal.message, data=refusal.body())


_CALLER_FAULTS = frozenset(
    {ErrorCode.TASK_NOT_FOUND, ErrorCode.TASK_ALREADY_TERMINAL, ErrorCode.INVALID_REQUEST}
)
