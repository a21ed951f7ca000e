"""``examples/mcp/ask.py`` when ``get_answer`` fails mid-wait (the awaithumans server went
away): the script reports the tool's error code and exits 1, not a KeyError traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mcp"


async def test_an_error_from_get_answer_is_reported_with_its_code(tmp_path: Path) -> None:
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
                "AWAITHUMANS_MCP_WAIT_SECONDS": "1",
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert script.stdout is not None
            first = (await asyncio.wait_for(script.stdout.readline(), 60)).decode()
            assert first.startswith("Asked: tsk_"), first
            server.stop()  # the script is now going round get_answer
            out, err = await asyncio.wait_for(script.communicate(), 90)
        finally:
            if script.returncode is None:
                script.kill()
                await script.wait()
    assert script.returncode == 1, (out + err).decode()
    assert "Traceback" not in err.decode()
    assert err.decode().startswith("refused: SERVER_UNREACHABLE: "), err.decode()
    assert out.decode() == ""
