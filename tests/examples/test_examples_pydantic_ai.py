"""``examples/pydantic-ai-approvals`` as a user runs it, with Pydantic AI's ``TestModel``
(``MODEL=test``) instead of a real one: stopped while it waits, run again, it finds the same
task; the person's edited arguments are what the refund runs with."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.integrations._person import admin, decide

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pydantic-ai-approvals"


@pytest.fixture(scope="module")
def aw_server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


async def open_keys(server: ServerProcess) -> list[str]:
    async with admin(server) as http:
        page = (await http.get("/api/tasks", params={"limit": 200})).json()
    return [item["idempotency_key"] for item in page["items"]]


async def test_refund_example_stopped_and_run_again(
    aw_server: ServerProcess, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "AWAITHUMANS_URL": aw_server.url,
        "AWAITHUMANS_API_KEY": aw_server.admin_token,
        "AWAITHUMANS_QUIET": "1",
        "MODEL": "test",
        "PENDING_RUN": str(tmp_path / "pending-run.json"),
    }

    async def start(*args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "agent.py",
            *args,
            cwd=EXAMPLE,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    first = await start("Refund order ord_7")
    keys = await until(lambda: open_keys(aw_server), 60)
    assert len(keys) == 1
    assert (tmp_path / "pending-run.json").exists()
    first.terminate()
    await asyncio.wait_for(first.wait(), 15)

    again = await start()
    edited = {"order_id": "ord_7", "amount_usd": 42}
    done = await decide(aw_server, keys[0], {"approved": True, "arguments": edited})
    out, _ = await asyncio.wait_for(again.communicate(), 60)
    text = out.decode()

    assert again.returncode == 0, text
    assert await open_keys(aw_server) == keys  # the same task, not a second one
    assert "REFUNDED 42 USD on ord_7" in text
    assert done["payload"]["tool"] == "refund"
    assert not (tmp_path / "pending-run.json").exists()
