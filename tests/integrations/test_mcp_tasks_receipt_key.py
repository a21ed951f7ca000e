"""A task-augmented `ask_human` with a bad `AWAITHUMANS_RECEIPT_PUBLIC_KEY` is refused before
any awaithumans task exists, as the plain call is: nobody is asked a question whose answer
the agent could never accept (every `tasks/result` would fail the receipt check).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from awaithumans.testing import ServerProcess
from tests.integrations._person import admin
from tests.integrations.test_mcp_server import CLI, ask, mcp_env
from tests.integrations.test_mcp_tasks import agent_key, call_as_task  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(workdir=tmp_path_factory.mktemp("mcp-tasks-key")) as proc:
        yield proc


async def _titled(server: ServerProcess, title: str) -> list[str]:
    async with admin(server) as http:
        listed = await http.get("/api/tasks", params={"q": title})
    assert listed.status_code == 200, listed.text
    return [t["id"] for t in listed.json()["items"] if t["task"] == title]


async def test_a_bad_receipt_key_refuses_the_task_call_before_any_task_exists(
    server: ServerProcess,
    agent_key: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    env = mcp_env(server, agent_key, tmp_path)
    env["AWAITHUMANS_RECEIPT_PUBLIC_KEY"] = "not-a-key"
    params = StdioServerParameters(command=CLI, args=["mcp"], env=env)
    plain_title = f"Plain: refund $42? {uuid.uuid4().hex[:8]}"
    task_title = f"Task: refund $42? {uuid.uuid4().hex[:8]}"
    async with Client(params, read_timeout_seconds=60, mode="legacy") as client:
        assert client.session.protocol_version == "2025-11-25"
        plain = await client.call_tool("ask_human", ask(plain_title))
        assert plain.is_error
        assert plain.structured_content is not None
        assert plain.structured_content["error"] == "RECEIPT_INVALID"

        refused = await call_as_task(client, "ask_human", ask(task_title))
        # The plain call's error result, not a CreateTaskResult.
        assert "task" not in refused
        assert refused["isError"] is True
        assert refused["structuredContent"] == plain.structured_content
    # The call returned only after the create would have been sent: nothing was created.
    assert await _titled(server, plain_title) == []
    assert await _titled(server, task_title) == []
