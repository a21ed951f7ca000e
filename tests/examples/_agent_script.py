"""Running an example's ``agent.py`` as its README does, for the approval examples' tests."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def aw_server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


async def start_agent(
    example: str, env: Mapping[str, str], *args: str
) -> asyncio.subprocess.Process:
    """``python agent.py ARGS`` in ``examples/<example>``; stdout and stderr in one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "agent.py",
        *args,
        cwd=EXAMPLES / example,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
