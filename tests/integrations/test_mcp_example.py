"""``examples/mcp/ask.py`` as its README runs it: the script launches the MCP server over
stdio, asks, keeps calling get_answer while waiting; a person answers through the API."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.integrations._mcp_example import example_running, first_line
from tests.integrations.test_mcp_server import answer, task_titled

pytestmark = pytest.mark.e2e


async def test_the_example_asks_waits_and_prints_the_decision(tmp_path: Path) -> None:
    async with example_running(tmp_path) as (server, script):
        first = await first_line(script)
        asked = re.fullmatch(r"Asked: (tsk_\w+) \(review at (\S+)\)\n", first)
        assert asked, first
        assert asked[2] == f"{server.url}/task?id={asked[1]}"
        task = await task_titled(server, "Publish the v2.3 release notes to the blog?")
        assert task["id"] == asked[1]
        assert [f["name"] for f in task["form_definition"]["fields"]] == ["publish", "note"]
        # ask_human has returned (the script printed the task) and nobody has answered:
        # it returned "waiting", so the answer reaches the script through get_answer.
        await answer(server, task["id"], {"publish": True, "note": "Looks good"})
        out, err = await asyncio.wait_for(script.communicate(), 60)
    assert script.returncode == 0, err.decode()
    assert out.decode() == "Decision: publish (Looks good)\n"
