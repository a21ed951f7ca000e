"""The ``examples/mcp/`` scripts launched as their README runs them, against a real
awaithumans server: shared by the examples' tests."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from awaithumans.testing import ServerProcess

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mcp"


@asynccontextmanager
async def example_running(
    tmp_path: Path, script_name: str = "ask.py"
) -> AsyncIterator[tuple[ServerProcess, asyncio.subprocess.Process]]:
    """A server and the example script asking it (stdout and stderr piped); the script is
    killed on the way out if the test left it running."""
    with ServerProcess(workdir=tmp_path) as server:
        script = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE / script_name),
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
            yield server, script
        finally:
            if script.returncode is None:
                script.kill()
                await script.wait()


async def first_line(script: asyncio.subprocess.Process) -> str:
    """The script's first line on stdout (``Asked: tsk_... (review at ...)``)."""
    assert script.stdout is not None
    return (await asyncio.wait_for(script.stdout.readline(), 60)).decode()
