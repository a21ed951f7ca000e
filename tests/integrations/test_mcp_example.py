"""``examples/mcp/ask.py`` as its README runs it: the script launches the MCP server over
stdio, asks, keeps calling get_answer while waiting; a person answers through the API."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess
from tests.integrations.test_mcp_server import answer, task_titled

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mcp"


async def test_the_example_asks_waits_and_prints_the_decision(tmp_path: Path) -> None:
    with ServerProcess(workdir=tmp_path) as server:
        script = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE / "ask.py"),
            cwd=tmp_path,
            env={
                **os.environ,
                "HOME": str(tmp_path),
                "AWAITHUMANS_URL": server.url,
                "AWAITHUMANS_API_KEY": server.admin_token,
                # Short calls, so the script goes round get_answer at least once.
                "AWAITHUMANS_MCP_WAIT_SECONDS": "1",
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert script.stdout is not None
            first = (await asyncio.wait_for(script.stdout.readline(), 60)).decode()
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
        finally:
            if script.returncode is None:
                script.kill()
                await script.wait()
    assert script.returncode == 0, err.decode()
    assert out.decode() == "Decision: publish (Looks good)\n"
