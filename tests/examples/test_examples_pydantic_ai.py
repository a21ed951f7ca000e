"""``examples/pydantic-ai-approvals`` as a user runs it, with Pydantic AI's ``TestModel``
(``MODEL=test``) instead of a real one: stopped while it waits, run again, it finds the same
task; the person's edited arguments are what the refund runs with."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.examples._agent_script import aw_server, start_agent  # noqa: F401 - fixture
from tests.integrations._person import decide, task_keys

pytestmark = pytest.mark.e2e


async def test_refund_example_stopped_and_run_again(
    aw_server: ServerProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "AWAITHUMANS_URL": aw_server.url,
        "AWAITHUMANS_API_KEY": aw_server.admin_token,
        "AWAITHUMANS_QUIET": "1",
        "MODEL": "test",
        "PENDING_RUN": str(tmp_path / "pending-run.json"),
    }

    first = await start_agent("pydantic-ai-approvals", env, "Refund order ord_7")
    keys = await until(lambda: task_keys(aw_server), 60)
    assert len(keys) == 1
    assert (tmp_path / "pending-run.json").exists()
    first.terminate()
    await asyncio.wait_for(first.wait(), 15)

    again = await start_agent("pydantic-ai-approvals", env)
    edited = {"order_id": "ord_7", "amount_usd": 42}
    done = await decide(aw_server, keys[0], {"approved": True, "arguments": edited})
    out, _ = await asyncio.wait_for(again.communicate(), 60)
    text = out.decode()

    assert again.returncode == 0, text
    assert await task_keys(aw_server) == keys  # the same task, not a second one
    assert "REFUNDED 42 USD on ord_7" in text
    assert done["payload"]["tool"] == "refund"
    assert not (tmp_path / "pending-run.json").exists()
