"""``examples/mcp/ask.py`` when ``get_answer`` fails mid-wait (the awaithumans server went
away): the script reports the tool's error code and exits 1, not a KeyError traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integrations._mcp_example import example_running, first_line

pytestmark = pytest.mark.e2e


async def test_an_error_from_get_answer_is_reported_with_its_code(tmp_path: Path) -> None:
    async with example_running(tmp_path) as (server, script):
        first = await first_line(script)
        assert first.startswith("Asked: tsk_"), first
        server.stop()  # the script is now going round get_answer
        out, err = await asyncio.wait_for(script.communicate(), 90)
    assert script.returncode == 1, (out + err).decode()
    assert "Traceback" not in err.decode()
    assert err.decode().startswith("refused: SERVER_UNREACHABLE: "), err.decode()
    assert out.decode() == ""
