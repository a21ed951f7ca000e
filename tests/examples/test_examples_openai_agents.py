"""``examples/openai-agents-approvals`` as a user runs it, its model a local stand-in of the
Chat Completions API (``OPENAI_BASE_URL``, ``OPENAI_API=chat_completions``): stopped while it
waits, run again, it resumes the saved ``RunState`` and finds the same task; a denial's
message is what the model reads, and the refund never runs."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.examples._agent_script import aw_server, start_agent  # noqa: F401 - fixture
from tests.integrations._person import decide, task_keys
from tests.support.chat_completions_standin import ChatCompletionsStandIn, tool_call

pytestmark = pytest.mark.e2e

CALL_ID = f"call_{uuid.uuid4().hex}"


def refund_brain(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Calls ``refund`` for order 7, then repeats what the tool message said."""
    said = [str(m["content"]) for m in messages if m["role"] == "tool"]
    if said:
        return {"content": said[-1]}
    return {"tool_calls": [tool_call(CALL_ID, "refund", {"order_id": "ord_7", "amount_usd": 42})]}


async def test_refund_example_stopped_resumed_and_denied(
    aw_server: ServerProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    with ChatCompletionsStandIn(refund_brain) as standin:
        env = {
            **os.environ,
            "AWAITHUMANS_URL": aw_server.url,
            "AWAITHUMANS_API_KEY": aw_server.admin_token,
            "AWAITHUMANS_QUIET": "1",
            "OPENAI_BASE_URL": standin.base_url,
            "OPENAI_API_KEY": "sk-standin",
            "OPENAI_API": "chat_completions",
            "OPENAI_MODEL": "gpt-standin",
            "OPENAI_AGENTS_DISABLE_TRACING": "1",
            "PENDING_RUN": str(tmp_path / "pending-run.json"),
        }

        first = await start_agent("openai-agents-approvals", env, "Refund order ord_7")
        keys = await until(lambda: task_keys(aw_server), 60)
        assert keys == [f"openai-agents:{CALL_ID}"]
        assert (tmp_path / "pending-run.json").exists()
        first.terminate()
        await asyncio.wait_for(first.wait(), 15)

        again = await start_agent("openai-agents-approvals", env)
        message = "Order 7 was refunded last week already."
        await decide(aw_server, keys[0], {"approved": False, "message": message})
        out, _ = await asyncio.wait_for(again.communicate(), 60)
        text = out.decode()

    assert again.returncode == 0, text
    assert await task_keys(aw_server) == keys  # the same task, not a second one
    assert "REFUNDED" not in text
    assert f"AGENT: {message}" in text
    # The model was asked for the call once; the resumed run only sent it the denial.
    assert len(standin.requests) == 2
    assert not (tmp_path / "pending-run.json").exists()
