"""The elicitation bridge: an MCP server written here asks its user (``ctx.elicit``); the
client's ``elicitation_handler`` puts the question to a person through a real awaithumans
server; the test answers (or cancels) the task through the API as that person."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.types import INVALID_PARAMS, ElicitRequestFormParams, ElicitResult, ErrorData
from pydantic import BaseModel, Field

from awaithumans.integrations.mcp import elicitation_handler
from awaithumans.testing import ServerProcess
from tests.integrations._person import admin
from tests.integrations.test_mcp_server import agent_key, answer, server, task_titled

__all__ = ["agent_key", "server"]  # the module-scoped fixtures, shared with the server's tests

pytestmark = pytest.mark.e2e


class Booking(BaseModel):
    date: str = Field(description="YYYY-MM-DD")
    guests: int = Field(ge=1, le=12)
    window_seat: bool = False


TABLES: MCPServer = MCPServer("tables")
"""A third-party MCP server whose tools need their user's input midway."""


def question(restaurant: str) -> str:
    return f"Which date and how many guests at {restaurant}?"


def booked(restaurant: str, asked: ElicitationResult[Booking]) -> str:
    if not isinstance(asked, AcceptedElicitation):
        return f"not booked: {asked.action}"
    b = asked.data
    return f"booked {restaurant} on {b.date} for {b.guests}, window={b.window_seat}"


@TABLES.tool()
async def book_table(restaurant: str, ctx: Context) -> str:
    """Asks mid-call with ``ctx.elicit``: a request to the client (2025-11-25 sessions)."""
    return booked(restaurant, await ctx.elicit(question(restaurant), schema=Booking))


async def ask_booking(restaurant: str) -> Elicit[Booking]:
    return Elicit(question(restaurant), Booking)


@TABLES.tool()
async def book_table_resolved(
    restaurant: str, asked: Annotated[ElicitationResult[Booking], Resolve(ask_booking)]
) -> str:
    """Asks through a resolver: on 2026-07-28 sessions an input-required result the client
    answers and retries with (the same elicitation callback either way)."""
    return booked(restaurant, asked)


@pytest.mark.parametrize(
    ("mode", "tool"), [("legacy", "book_table"), ("auto", "book_table_resolved")]
)
async def test_a_person_answers_the_servers_form_and_the_tool_gets_the_typed_answer(
    server: ServerProcess, agent_key: str, mode: str, tool: str
) -> None:
    restaurant = f"Noma {uuid.uuid4().hex[:8]}"
    handler = elicitation_handler(
        server_url=server.url, api_key=agent_key, title="Booking: {message}", timeout_seconds=600
    )
    async with Client(TABLES, elicitation_callback=handler, mode=mode) as mcp:
        call = asyncio.create_task(mcp.call_tool(tool, {"restaurant": restaurant}))
        task = await task_titled(server, f"Booking: {question(restaurant)}")
        # The requested schema is the response schema; the form is derived from it.
        assert task["response_schema"]["properties"]["guests"]["maximum"] == 12
        fields = {f["name"]: f["kind"] for f in task["form_definition"]["fields"]}
        assert fields == {"date": "short_text", "guests": "number", "window_seat": "switch"}
        assert task["payload"] == {"message": question(restaurant)}
        await answer(server, task["id"], {"date": "2026-12-24", "guests": 4, "window_seat": True})
        result = await asyncio.wait_for(call, 30)
    assert not result.is_error, result.content
    said = f"booked {restaurant} on 2026-12-24 for 4, window=True"
    assert [c.text for c in result.content if c.type == "text"] == [said]


async def test_a_cancelled_task_is_a_decline(server: ServerProcess, agent_key: str) -> None:
    restaurant = f"Geranium {uuid.uuid4().hex[:8]}"
    handler = elicitation_handler(server_url=server.url, api_key=agent_key, timeout_seconds=600)
    async with Client(TABLES, elicitation_callback=handler, mode="legacy") as mcp:
        call = asyncio.create_task(mcp.call_tool("book_table", {"restaurant": restaurant}))
        task = await task_titled(server, question(restaurant))
        async with admin(server) as http:
            done = await http.post(f"/api/tasks/{task['id']}/cancel", json={"reason": "no"})
        assert done.status_code == 200, done.text
        result = await asyncio.wait_for(call, 30)
    assert [c.text for c in result.content if c.type == "text"] == ["not booked: decline"]


async def test_a_schema_awaithumans_refuses_is_an_error_with_the_code(
    server: ServerProcess, agent_key: str
) -> None:
    handler = elicitation_handler(server_url=server.url, api_key=agent_key)
    got = await handler(
        ClientRequestContext(session=None, request_id=7),  # type: ignore[arg-type]
        ElicitRequestFormParams(
            message="Name?",
            requested_schema={"type": "object", "properties": {"n": {"type": "nonsense"}}},
        ),
    )
    assert isinstance(got, ErrorData)
    assert got.code == INVALID_PARAMS
    data: dict[str, Any] = got.data
    assert data["error"] == "INVALID_SCHEMA"


async def test_a_url_mode_request_is_declined(server: ServerProcess, agent_key: str) -> None:
    from mcp.types import ElicitRequestURLParams

    handler = elicitation_handler(server_url=server.url, api_key=agent_key)
    got = await handler(
        ClientRequestContext(session=None, request_id=8),  # type: ignore[arg-type]
        ElicitRequestURLParams(message="Sign in", url="https://example.com/oauth"),
    )
    assert got == ElicitResult(action="decline")


def test_outcomes_map_onto_the_protocols_actions() -> None:
    # A timeout needs a minute of a real task; the mapping itself, for every ending:
    # nobody answered -> cancel (no choice was made), cancelled -> decline (someone chose).
    from awaithumans.core._wire import PollResponse, TaskStatus
    from awaithumans.integrations.mcp._elicitation import _result

    def action(status: TaskStatus, response: dict[str, Any] | None = None) -> ElicitResult:
        return _result(PollResponse(status=status, response=response))

    assert action(TaskStatus.COMPLETED, {"guests": 2}) == ElicitResult(
        action="accept", content={"guests": 2}
    )
    assert action(TaskStatus.TIMED_OUT).action == "cancel"
    assert action(TaskStatus.CANCELLED).action == "decline"
