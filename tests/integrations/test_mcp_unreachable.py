"""`ask_human` and `get_answer` keep to their budget when the awaithumans server cannot be
reached, and say which server: nothing listening (refused), or a port that takes the
connection and never replies. ``AWAITHUMANS_CONNECT_TIMEOUT`` is set far above the budget,
so a create that waited it out (as it did before) fails the time assertions."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from awaithumans.testing import free_port
from tests.integrations.test_mcp_server import CLI, ask, refusal

pytestmark = pytest.mark.e2e

BUDGET = 2.0
# The budget, plus the stdio round trip and the subprocess's own pace on a loaded machine.
SLACK = 4.0


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port that completes the TCP handshake (the listen backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def mcp_client(url: str, home: Path) -> Client:
    env = {
        **os.environ,
        "AWAITHUMANS_URL": url,
        "AWAITHUMANS_API_KEY": "ah_test_unused",
        "AWAITHUMANS_CONNECT_TIMEOUT": "60",
        "HOME": str(home),
    }
    params = StdioServerParameters(
        command=CLI, args=["mcp", "--wait-seconds", f"{BUDGET:g}"], env=env
    )
    return Client(params, read_timeout_seconds=90)


@pytest.mark.parametrize("kind", ["refused", "silent"])
async def test_an_unreachable_server_is_an_error_naming_it_within_the_budget(
    kind: str, silent_url: str, tmp_path: Path
) -> None:
    url = silent_url if kind == "silent" else f"http://127.0.0.1:{free_port()}"
    async with mcp_client(url, tmp_path) as client:
        started = time.monotonic()
        asked = refusal(await client.call_tool("ask_human", ask("Ship it?")))
        took = time.monotonic() - started
        assert asked["error"] == "SERVER_UNREACHABLE"
        assert f"Cannot reach the awaithumans server at {url}" in asked["message"]
        assert BUDGET - 0.5 <= took < BUDGET + SLACK, took  # it did try for the budget
        started = time.monotonic()
        got = refusal(await client.call_tool("get_answer", {"task_id": "tsk_x"}))
        took = time.monotonic() - started
    assert got["error"] == "SERVER_UNREACHABLE"
    assert url in got["message"]
    assert took < BUDGET + SLACK, took
