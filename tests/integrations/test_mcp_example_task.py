"""``examples/mcp/ask_as_task.py``: the question asked as a 2025-11-25 protocol task; the
script shows the task's status, blocks on ``tasks/result``, and prints the decision once a
person answers through the API."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.integrations._mcp_example import example_running, first_line
from tests.integrations.test_mcp_server import answer, task_titled

pytestmark = pytest.mark.e2e


async def test_the_task_example_blocks_on_the_result_and_prints_the_decision(
    tmp_path: Path,
) -> None:
    async with example_running(tmp_path, "ask_as_task.py") as (server, script):
        first = await first_line(script)
        shown = re.fullmatch(
            r"Task (tsk_\w+): working: Waiting for a person to answer at (\S+) \(task \w+\)\.\n",
            first,
        )
        assert shown, first
        assert shown[2] == f"{server.url}/task?id={shown[1]}"
        task = await task_titled(server, "Publish the v2.3 release notes to the blog?")
        assert task["id"] == shown[1]
        await answer(server, task["id"], {"publish": False, "note": "Wait for the launch"})
        out, err = await asyncio.wait_for(script.communicate(), 60)
    assert script.returncode == 0, err.decode()
    assert out.decode() == "Decision: hold (Wait for the launch)\n"
