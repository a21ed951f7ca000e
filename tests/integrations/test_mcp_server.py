"""`awaithumans mcp` driven by the MCP SDK's own client, over stdio and streamable HTTP.

A real awaithumans server; the MCP server is the real command in a subprocess, acting with
an agent key; the person answers through the API with the admin token.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

from awaithumans.core._wire import PollResponse, TaskStatus, TaskView
from awaithumans.integrations.mcp._questions import outcome as result_of
from awaithumans.testing import ServerProcess, free_port
from tests._waiting import until
from tests.integrations._person import admin

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("awaithumans"))
DECISION = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "title": "Approve?"},
        "note": {"type": "string"},
    },
    "required": ["approved"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(workdir=tmp_path_factory.mktemp("mcp-server")) as proc:
        yield proc


@pytest.fixture(scope="module")
def agent_key(server: ServerProcess) -> str:
    made = httpx.post(
        f"{server.url}/api/admin/agent-keys",
        json={"name": "mcp-test"},
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def mcp_env(server: ServerProcess, key: str, home: Path) -> dict[str, str]:
    # HOME elsewhere: no developer's dev-server file may be discovered instead.
    return {**os.environ, "AWAITHUMANS_URL": server.url, "AWAITHUMANS_API_KEY": key,
            "HOME": str(home)}  # fmt: skip


def stdio(server: ServerProcess, key: str, home: Path, *flags: str) -> Client:
    params = StdioServerParameters(
        command=CLI, args=["mcp", *flags], env=mcp_env(server, key, home)
    )
    return Client(params, read_timeout_seconds=60)


@asynccontextmanager
async def http_mcp(server: ServerProcess, key: str, home: Path, *flags: str) -> AsyncIterator[str]:
    """`awaithumans mcp --transport http` running; yields its URL."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        CLI, "mcp", "--transport", "http", "--port", str(port), *flags,
        env=mcp_env(server, key, home),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        url = f"http://127.0.0.1:{port}/mcp"
        assert line.decode().strip() == f"✓ MCP server at {url}"
        yield url
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)


async def task_titled(server: ServerProcess, title: str) -> dict[str, Any]:
    """The one task whose title is ``title``, once it exists."""

    async def found() -> dict[str, Any] | None:
        async with admin(server) as http:
            listed = await http.get("/api/tasks", params={"q": title})
        assert listed.status_code == 200, listed.text
        return next((t for t in listed.json()["items"] if t["task"] == title), None)

    listed: dict[str, Any] = await until(found, timeout=30, why=server.logs)
    async with admin(server) as http:
        whole = await http.get(f"/api/tasks/{listed['id']}")
    assert whole.status_code == 200, whole.text
    task: dict[str, Any] = whole.json()
    return task


async def answer(server: ServerProcess, task_id: str, response: dict[str, Any]) -> None:
    async with admin(server) as http:
        done = await http.post(f"/api/tasks/{task_id}/complete", json={"response": response})
    assert done.status_code == 200, done.text


def outcome(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def refusal(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    assert result.structured_content is not None
    return dict(result.structured_content)


def ask(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "task": title,
        "payload": {"order_id": "ord_7", "amount_usd": 42},
        "response_schema": DECISION,
        **extra,
    }


async def test_stdio_lists_the_tools_and_returns_an_answer_given_within_the_budget(
    server: ServerProcess, agent_key: str, tmp_path: Path
) -> None:
    title = f"Refund $42 for ord_7? {uuid.uuid4().hex[:8]}"
    async with stdio(server, agent_key, tmp_path, "--wait-seconds", "30") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"ask_human", "get_answer"}
        assert tools["ask_human"].input_schema["required"] == [
            "task", "payload", "response_schema"
        ]  # fmt: skip
        started = time.monotonic()
        call = asyncio.create_task(client.call_tool("ask_human", ask(title)))
        task = await task_titled(server, title)
        # The form the person sees is derived from the JSON schema, as the server would.
        assert [f["name"] for f in task["form_definition"]["fields"]] == ["approved", "note"]
        assert task["payload"] == {"order_id": "ord_7", "amount_usd": 42}
        await answer(server, task["id"], {"approved": True, "note": "duplicate charge"})
        got = outcome(await asyncio.wait_for(call, 30))
    assert time.monotonic() - started < 30  # returned on the answer, not at the budget
    assert got["status"] == "completed"
    assert got["task_id"] == task["id"]
    assert got["response"] == {"approved": True, "note": "duplicate charge"}
    assert got["review_url"].startswith(server.url)


async def test_stdio_waiting_then_get_answer_and_a_repeat_resumes(
    server: ServerProcess, agent_key: str, tmp_path: Path
) -> None:
    title = f"Delete the staging DB? {uuid.uuid4().hex[:8]}"
    async with stdio(server, agent_key, tmp_path, "--wait-seconds", "1") as client:
        started = time.monotonic()
        first = outcome(await client.call_tool("ask_human", ask(title, timeout_seconds=600)))
        assert time.monotonic() - started < 10  # the budget, not the task's timeout
        assert first["status"] == "waiting"
        assert first["task_status"] in {"created", "notified"}
        assert f'get_answer with task_id="{first["task_id"]}"' in first["message"]
        # The same question again (key derived from task and payload): the same task.
        again = outcome(await client.call_tool("ask_human", ask(title, timeout_seconds=600)))
        assert (again["status"], again["task_id"]) == ("waiting", first["task_id"])
        still = outcome(await client.call_tool("get_answer", {"task_id": first["task_id"]}))
        assert still["status"] == "waiting"

        await answer(server, first["task_id"], {"approved": False, "note": "not yet"})
        got = outcome(await client.call_tool("get_answer", {"task_id": first["task_id"]}))
        assert got["status"] == "completed"
        assert got["response"] == {"approved": False, "note": "not yet"}
        # A repeat of ask_human with the key it was given gets the stored answer at once.
        key = first["idempotency_key"]
        resumed = outcome(
            await client.call_tool(
                "ask_human", ask(title, timeout_seconds=600, idempotency_key=key)
            )
        )
    assert (resumed["status"], resumed["task_id"]) == ("completed", first["task_id"])
    assert resumed["response"] == {"approved": False, "note": "not yet"}


async def test_bad_input_is_a_tool_error_with_a_stable_code(
    server: ServerProcess, agent_key: str, tmp_path: Path
) -> None:
    async with stdio(server, agent_key, tmp_path, "--wait-seconds", "1") as client:
        not_object = refusal(
            await client.call_tool("ask_human", ask("Q?", response_schema={"type": "string"}))
        )
        assert not_object["error"] == "INVALID_SCHEMA"
        assert "response_schema" in not_object["message"]
        payload = refusal(await client.call_tool("ask_human", ask("Q?", payload=[1, 2])))
        assert payload["error"] == "SCHEMA_VALIDATION_FAILED"
        timeout = refusal(await client.call_tool("ask_human", ask("Q?", timeout_seconds=5)))
        assert timeout["error"] == "TIMEOUT_OUT_OF_RANGE"
        # Refused by the awaithumans server itself: its code comes through unchanged.
        route = refusal(await client.call_tool("ask_human", ask("Q?", notify=["pager:ops"])))
        assert route["error"] == "INVALID_NOTIFY_ROUTE"
        missing = refusal(await client.call_tool("get_answer", {"task_id": "tsk_nope"}))
        assert missing["error"] == "TASK_NOT_FOUND"
        # A key already given to another question: refused, never the other task's answer.
        key = f"k-{uuid.uuid4().hex}"
        asked = outcome(await client.call_tool("ask_human", ask("Q1?", idempotency_key=key)))
        assert asked["status"] == "waiting"
        clash = refusal(await client.call_tool("ask_human", ask("Q2?", idempotency_key=key)))
        assert clash["error"] == "IDEMPOTENCY_CONFLICT"


async def test_http_transport_waits_with_progress_and_reports_a_cancel_as_a_result(
    server: ServerProcess, agent_key: str, tmp_path: Path
) -> None:
    title = f"Send the newsletter? {uuid.uuid4().hex[:8]}"
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with (
        http_mcp(server, agent_key, tmp_path, "--wait-seconds", "2") as url,
        Client(url, read_timeout_seconds=60) as client,
    ):
        first = outcome(
            await client.call_tool("ask_human", ask(title), progress_callback=on_progress)
        )
        assert first["status"] == "waiting"
        # Progress went out while the call waited, naming the task.
        assert seen
        assert all(first["task_id"] in (m or "") for _, m in seen)
        await answer(server, first["task_id"], {"approved": True})
        got = outcome(await client.call_tool("get_answer", {"task_id": first["task_id"]}))
        assert (got["status"], got["response"]) == ("completed", {"approved": True})

        other = f"Wire $9,000? {uuid.uuid4().hex[:8]}"
        waiting = outcome(await client.call_tool("ask_human", ask(other)))
        async with admin(server) as http:
            cancelled = await http.post(
                f"/api/tasks/{waiting['task_id']}/cancel", json={"reason": "wrong vendor"}
            )
        assert cancelled.status_code == 200, cancelled.text
        ended = outcome(await client.call_tool("get_answer", {"task_id": waiting["task_id"]}))
    assert ended["status"] == "cancelled"
    assert "response" not in ended


def test_a_wait_budget_out_of_range_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [CLI, "mcp", "--wait-seconds", "900"],
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "awaithumans mcp: the wait must be 0 to 600 seconds, not 900" in done.stderr


def test_the_sdk_is_imported_only_when_the_command_runs() -> None:
    # `import awaithumans`, the CLI's parser, even `awaithumans --help`: no `mcp`; the
    # package itself, without the SDK: the missing-extra error naming `awaithumans[mcp]`.
    probe = """
import sys
import awaithumans
from awaithumans.server.cli.main import build_parser
assert "mcp" in build_parser().format_help()
assert "mcp" not in sys.modules and "awaithumans.integrations.mcp" not in sys.modules
sys.modules["mcp"] = None
try:
    import awaithumans.integrations.mcp
except ImportError as exc:
    print(exc.code, exc.message)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("EXTRA_NOT_INSTALLED ")
    assert 'pip install "awaithumans[mcp]"' in done.stdout


def test_a_timeout_is_a_result_with_the_default_if_the_task_had_one() -> None:
    # A real timeout takes a minute at least (the shortest task); the report of one:
    view = TaskView.model_validate(
        {"id": "tsk_1", "idempotency_key": "k", "task": "Q?", "status": "timed_out",
         "payload_schema": {}, "response_schema": DECISION, "timeout_seconds": 60,
         "timeout_at": "2026-01-01T00:01:00Z", "created_at": "2026-01-01T00:00:00Z",
         "updated_at": "2026-01-01T00:01:00Z"}
    )  # fmt: skip
    plain = result_of(view, PollResponse(status=TaskStatus.TIMED_OUT), "u", 25)
    assert plain["status"] == "timed_out"
    assert "response" not in plain
    assert "Do not act as if approved" in plain["message"]
    defaulted = result_of(
        view,
        PollResponse(
            status=TaskStatus.TIMED_OUT, response={"approved": False}, default_applied=True
        ),
        "u",
        25,
    )
    assert defaulted["response"] == {"approved": False}
    assert defaulted["default_applied"] is True
