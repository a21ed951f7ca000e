"""`ask_human` as a 2025-11-25 task, driven by the MCP SDK's own client (stdio and streamable
HTTP) against a real awaithumans server: a task-augmented call returns at once, and
`tasks/get`, `tasks/result`, `tasks/list` and `tasks/cancel` follow the awaithumans task.

The client negotiates 2025-11-25 through the handshake (``mode="legacy"``). Its `call_tool`
validates every `tools/call` result as a `CallToolResult`, which a `CreateTaskResult` is
not, so the task-augmented call goes through the session's dispatcher as raw JSON-RPC; the
`tasks/*` requests go through the session's typed `send_request`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    CallToolResult,
    CancelTaskRequest,
    CancelTaskRequestParams,
    CancelTaskResult,
    GetTaskPayloadRequest,
    GetTaskPayloadRequestParams,
    GetTaskRequest,
    GetTaskRequestParams,
    GetTaskResult,
    ListTasksRequest,
    ListTasksResult,
)

from awaithumans.core._wire import TaskView
from awaithumans.integrations.mcp._tasks import task_fields
from awaithumans.testing import ServerProcess
from tests.integrations._person import admin
from tests.integrations.test_mcp_server import (
    CLI,
    answer,
    ask,
    http_mcp,
    mcp_env,
    task_titled,
)

pytestmark = pytest.mark.e2e

RELATED_TASK = "io.modelcontextprotocol/related-task"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(workdir=tmp_path_factory.mktemp("mcp-tasks")) as proc:
        yield proc


@pytest.fixture(scope="module")
def agent_key(server: ServerProcess) -> str:
    made = httpx.post(
        f"{server.url}/api/admin/agent-keys",
        json={"name": "mcp-tasks"},
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def legacy_stdio(server: ServerProcess, key: str, home: Path, *flags: str) -> Client:
    params = StdioServerParameters(
        command=CLI, args=["mcp", *flags], env=mcp_env(server, key, home)
    )
    return Client(params, read_timeout_seconds=60, mode="legacy")


async def call_as_task(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """`tools/call` with a `task` field, as raw JSON-RPC (see the module docstring)."""
    params = {"name": name, "arguments": arguments, "task": {"ttl": 3_600_000}}
    raw: dict[str, Any] = await client.session._dispatcher.send_raw_request(
        "tools/call", params, {"timeout": 60}
    )
    return raw


async def get(client: Client, task_id: str) -> GetTaskResult:
    request = GetTaskRequest(params=GetTaskRequestParams(task_id=task_id))
    return await client.session.send_request(request, GetTaskResult)


async def result(client: Client, task_id: str) -> CallToolResult:
    request = GetTaskPayloadRequest(params=GetTaskPayloadRequestParams(task_id=task_id))
    return await client.session.send_request(request, CallToolResult, 120)


async def cancel(client: Client, task_id: str) -> CancelTaskResult:
    request = CancelTaskRequest(params=CancelTaskRequestParams(task_id=task_id))
    return await client.session.send_request(request, CancelTaskResult)


async def test_stdio_a_task_returns_at_once_and_its_result_is_the_answer(
    server: ServerProcess, agent_key: str, tmp_path: Path
) -> None:
    title = f"Refund $42 for ord_7? {uuid.uuid4().hex[:8]}"
    # A budget of 30 s: the task-augmented call must not spend it.
    async with legacy_stdio(server, agent_key, tmp_path, "--wait-seconds", "30") as client:
        assert client.session.protocol_version == "2025-11-25"
        tasks = client.server_capabilities.tasks
        assert tasks is not None
        assert tasks.requests is not None
        assert tasks.requests.tools is not None
        assert tasks.requests.tools.call is not None
        assert tasks.list is not None
        assert tasks.cancel is not None
        tools = {t.name: t for t in (await client.list_tools()).tools}
        ask_tool, get_tool = tools["ask_human"], tools["get_answer"]
        assert ask_tool.execution is not None
        assert ask_tool.execution.task_support == "optional"
        assert get_tool.execution is None  # absent: forbidden

        started = time.monotonic()
        created = await call_as_task(client, "ask_human", ask(title))
        assert time.monotonic() - started < 15  # not the 30 s budget
        task = created["task"]
        asked = await task_titled(server, title)
        assert task["taskId"] == asked["id"]  # the MCP task is the awaithumans task
        assert task["status"] == "working"
        assert task["pollInterval"] == 5000
        assert task["ttl"] is None
        review_url = f"{server.url}/task?id={asked['id']}"
        assert review_url in task["statusMessage"]

        polled = await get(client, task["taskId"])
        assert (polled.status, polled.task_id) == ("working", asked["id"])
        assert polled.status_message is not None
        assert review_url in polled.status_message
        # tasks/result blocks while nobody has answered.
        waiting = asyncio.create_task(result(client, task["taskId"]))
        await get(client, task["taskId"])  # a round trip after tasks/result went out
        assert not waiting.done()
        await answer(server, asked["id"], {"approved": True, "note": "duplicate charge"})
        got = await asyncio.wait_for(waiting, 60)
        # The very result the plain call returns.
        assert not got.is_error
        assert got.structured_content is not None
        assert got.structured_content["status"] == "completed"
        assert got.structured_content["task_id"] == asked["id"]
        assert got.structured_content["response"] == {"approved": True, "note": "duplicate charge"}
        assert got.meta is not None
        assert got.meta[RELATED_TASK] == {"taskId": asked["id"]}

        done = await get(client, task["taskId"])
        assert done.status == "completed"
        listed = await client.session.send_request(ListTasksRequest(), ListTasksResult)
        assert [(t.task_id, t.status) for t in listed.tasks] == [(asked["id"], "completed")]
        # The result stays available: asked again, the same answer at once.
        again = await asyncio.wait_for(result(client, task["taskId"]), 15)
        assert again.structured_content == got.structured_content


async def test_http_cancel_refusals_and_errors_of_tasks(
    server: ServerProcess, agent_key: str, tmp_path: Path
) -> None:
    title = f"Wire $9,000? {uuid.uuid4().hex[:8]}"
    async with (
        http_mcp(server, agent_key, tmp_path, "--wait-seconds", "1") as url,
        Client(url, read_timeout_seconds=60, mode="legacy") as client,
    ):
        task = (await call_as_task(client, "ask_human", ask(title)))["task"]
        ended = await cancel(client, task["taskId"])
        assert ended.status == "cancelled"
        async with admin(server) as http:
            stored = (await http.get(f"/api/tasks/{task['taskId']}")).json()
        assert stored["status"] == "cancelled"  # the awaithumans task itself
        assert (await get(client, task["taskId"])).status == "cancelled"
        got = await asyncio.wait_for(result(client, task["taskId"]), 30)
        assert got.structured_content is not None
        assert got.structured_content["status"] == "cancelled"
        assert "response" not in got.structured_content

        with pytest.raises(MCPError) as twice:
            await cancel(client, task["taskId"])
        assert twice.value.error.code == INVALID_PARAMS
        assert twice.value.error.data["error"] == "TASK_ALREADY_TERMINAL"
        with pytest.raises(MCPError) as unknown:
            await get(client, "tsk_nope")
        assert unknown.value.error.code == INVALID_PARAMS
        assert unknown.value.error.data["error"] == "TASK_NOT_FOUND"
        with pytest.raises(MCPError) as not_a_task_tool:
            await call_as_task(client, "get_answer", {"task_id": task["taskId"]})
        assert not_a_task_tool.value.error.code == METHOD_NOT_FOUND

        # Refused before any task exists: the plain call's error result, not a task.
        bad = await call_as_task(client, "ask_human", ask("Q?", response_schema={"type": "string"}))
        assert "task" not in bad
        assert bad["isError"] is True
        assert bad["structuredContent"]["error"] == "INVALID_SCHEMA"
        # Arguments of the wrong type, which the SDK's tool would check for a plain call.
        typed = await call_as_task(client, "ask_human", ask("Q?", timeout_seconds="soon"))
        assert typed["isError"] is True
        assert typed["structuredContent"]["error"] == "VALIDATION_ERROR"
        assert "timeout_seconds" in typed["structuredContent"]["message"]


async def test_clients_of_the_2026_protocol_see_no_tasks_and_keep_waiting(
    server: ServerProcess, agent_key: str, tmp_path: Path
) -> None:
    title = f"Send the newsletter? {uuid.uuid4().hex[:8]}"
    async with (
        http_mcp(server, agent_key, tmp_path, "--wait-seconds", "1") as url,
        Client(url, read_timeout_seconds=60) as client,
    ):
        assert client.session.protocol_version == "2026-07-28"
        assert client.server_capabilities.tasks is None
        tools = (await client.list_tools()).tools
        assert all(t.execution is None for t in tools)
        plain = await client.call_tool("ask_human", ask(title))
    assert plain.structured_content is not None
    assert plain.structured_content["status"] == "waiting"
    assert (await task_titled(server, title))["status"] in {"created", "notified"}


@pytest.mark.parametrize(
    ("status", "mcp_status", "said"),
    [
        ("created", "working", "Waiting for a person to answer at u (task created)."),
        ("in_progress", "working", "Waiting for a person to answer at u (task in_progress)."),
        ("completed", "completed", "A person answered (u); tasks/result has the answer."),
        ("cancelled", "cancelled", "The task was cancelled before anyone answered (u)."),
        ("timed_out", "failed", "Nobody answered within the task's 60 s (u)."),
        ("verification_exhausted", "failed", "Every answer given failed the task's verifier (u)."),
    ],
)
def test_each_task_status_has_its_protocol_status(status: str, mcp_status: str, said: str) -> None:
    # A real timeout takes a minute at least, and exhausting a verifier needs one: the
    # mapping itself, for every status.
    view = TaskView.model_validate(
        {"id": "tsk_1", "idempotency_key": "k", "task": "Q?", "status": status,
         "payload_schema": {}, "response_schema": {}, "timeout_seconds": 60,
         "timeout_at": "2026-01-01T00:01:00Z", "created_at": "2026-01-01T00:00:00Z",
         "updated_at": "2026-01-01T00:00:30Z"}
    )  # fmt: skip
    fields = task_fields(view, "u")
    assert (fields["status"], fields["statusMessage"]) == (mcp_status, said)
    assert (fields["createdAt"], fields["lastUpdatedAt"]) == (
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:00:30+00:00",
    )
