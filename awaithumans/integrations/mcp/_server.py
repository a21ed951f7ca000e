"""The MCP server: ``ask_human`` and ``get_answer`` as tools, on the official SDK's MCPServer.

Each tool returns a ``CallToolResult`` built here: the outcome as structured content and
as JSON text (what most clients hand the model). Bad input and refusals are error results
whose JSON carries the stable code (``{"error": "INVALID_SCHEMA", ...}``); a task that
timed out or was cancelled is an ordinary result, since it is an answer of sorts.
"""

# No ``from __future__ import annotations``: the SDK reads the tools' signatures at
# registration, and its Context detection resolves annotations in this module's namespace.

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field, WithJsonSchema

from awaithumans.integrations.mcp._questions import (
    DEFAULT_TIMEOUT_SECONDS,
    Desk,
    Progress,
    ToolRefusal,
)
from awaithumans.integrations.mcp._results import tool_refusal, tool_result
from awaithumans.integrations.mcp._tasks import TaskAugmentation

INSTRUCTIONS = (
    "Ask a person when a decision needs human judgment or approval (refunds, deletions,"
    " messages sent on someone's behalf, anything risky or ambiguous). ask_human returns the"
    " person's answer, or status 'waiting' with a task_id: then call get_answer with that id"
    " until the status is final. Never act as if approved before status is 'completed'."
)

_ASK = (
    "Ask a person a question and get their typed answer. The person sees `task`, the"
    " `payload` and a form built from `response_schema` (on the awaithumans dashboard, Slack"
    " or email). Returns status 'completed' with `response` when they answered in time;"
    " 'waiting' with `task_id` while they have not (then call get_answer, or repeat this call"
    " with the same idempotency_key); 'timed_out' or 'cancelled' when there will be no answer."
)
_GET = (
    "Wait (a little) for the answer to a question asked with ask_human. Returns the same"
    " shapes as ask_human: 'completed' with `response`, 'waiting', 'timed_out' or 'cancelled'."
)

JsonObject = Annotated[Any, WithJsonSchema({"type": "object", "additionalProperties": True})]


def build_server(desk: Desk | None = None) -> MCPServer:
    """An MCP server whose tools ask people through ``desk`` (its budget and server)."""
    desk = desk or Desk()
    server: MCPServer = MCPServer(
        "awaithumans",
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        # ask_human as a 2025-11-25 task for clients that send tools/call with `task`.
        middleware=[TaskAugmentation(desk)],
    )

    @server.tool(
        name="ask_human",
        title="Ask a human",
        description=_ASK,
        annotations=ToolAnnotations(read_only_hint=False, open_world_hint=True),
    )
    async def ask_human(
        task: Annotated[
            str, Field(description="The question, as the person reads it (one line, ≤500 chars).")
        ],
        payload: Annotated[
            JsonObject,
            Field(description="A JSON object with what the person needs to decide (shown as is)."),
        ],
        response_schema: Annotated[
            JsonObject,
            Field(
                description='A JSON schema of the answer: {"type": "object", "properties":'
                ' {...}, "required": [...]}; each property becomes a form field (boolean: a'
                " switch, enum: a choice, string, number, ...)."
            ),
        ],
        ctx: Context,
        notify: Annotated[
            list[str] | None,
            Field(description='Where to notify: "slack:#channel", "email:a@b.com", ...'),
        ] = None,
        assign_to: Annotated[
            str | list[str] | None,
            Field(description="An email (or several) of who should answer."),
        ] = None,
        timeout_seconds: Annotated[
            int | None,
            Field(
                description="How long the person has, 60 s to 30 days"
                f" (default {DEFAULT_TIMEOUT_SECONDS})."
            ),
        ] = None,
        idempotency_key: Annotated[
            str | None,
            Field(
                description="Same key, same task: a repeat resumes the wait. Derived from"
                " task and payload when omitted."
            ),
        ] = None,
    ) -> CallToolResult:
        try:
            result = await desk.ask(
                task=task,
                payload=payload,
                response_schema=response_schema,
                notify=notify,
                assign_to=assign_to,
                timeout_seconds=timeout_seconds,
                idempotency_key=idempotency_key,
                progress=_progress(ctx),
            )
        except ToolRefusal as refusal:
            return tool_refusal(refusal)
        return tool_result(result)

    @server.tool(
        name="get_answer",
        title="Get a human's answer",
        description=_GET,
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    async def get_answer(
        task_id: Annotated[str, Field(description="The task_id ask_human returned.")],
        ctx: Context,
    ) -> CallToolResult:
        try:
            result = await desk.answer(task_id, progress=_progress(ctx))
        except ToolRefusal as refusal:
            return tool_refusal(refusal)
        return tool_result(result)

    return server


def _progress(ctx: Context) -> Progress:
    """Progress notifications while a call waits (a no-op unless the client asked for them,
    with a progress token): clients that count them as signs of life keep the call open."""

    async def report(elapsed: float, message: str) -> None:
        await ctx.report_progress(round(elapsed, 1), None, message)

    return report
