"""The OpenAI Agents SDK's ``needs_approval`` tools, decided by a person through a real
awaithumans server: approve (the tool runs), reject (the model reads the message, the tool
does not run), and a run resumed from its serialized ``RunState`` after its process stopped.

The model is a local stand-in of the Chat Completions API (``tests/support``), reached
through ``AsyncOpenAI(base_url=...)`` and the SDK's ``OpenAIChatCompletionsModel``: it calls
``refund`` with the call ids the test gives it, then answers with what the calls returned."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner, function_tool
from agents.run_config import RunOptions
from openai import AsyncOpenAI

from awaithumans.integrations.openai_agents import (
    AskOptions,
    ToolDecision,
    resolve_interruptions,
    resume_with_approvals,
    run_with_approvals,
)
from awaithumans.testing import ServerProcess
from tests.integrations._person import decide, task_with_key, tasks_with_key
from tests.support.chat_completions_standin import ChatCompletionsStandIn, tool_call

pytestmark = pytest.mark.e2e

# No traces leave the test (the SDK would send them to OpenAI).
RUN: RunOptions[Any] = {"run_config": RunConfig(tracing_disabled=True)}


@pytest.fixture(scope="module")
def aw_server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


@dataclass
class RefundBrain:
    """Plays the model: calls ``refund`` once per entry of ``calls``, then answers with what
    the tool messages said (results, or rejections' messages), and keeps those."""

    calls: list[tuple[str, dict[str, Any]]]
    tool_messages: list[str] = field(default_factory=list)

    def __call__(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        results = [str(m["content"]) for m in messages if m["role"] == "tool"]
        if results:
            self.tool_messages = results
            return {"content": " | ".join(results)}
        return {"tool_calls": [tool_call(cid, "refund", args) for cid, args in self.calls]}


@dataclass
class Setup:
    brain: RefundBrain
    standin: ChatCompletionsStandIn
    ran: list[dict[str, Any]] = field(default_factory=list)

    def agent(self) -> Agent[Any]:
        ran = self.ran

        @function_tool(needs_approval=True)
        def refund(order_id: str, amount_usd: int) -> str:
            """Send money back to a customer."""
            ran.append({"order_id": order_id, "amount_usd": amount_usd})
            return f"refunded {amount_usd} USD on {order_id}"

        client = AsyncOpenAI(base_url=self.standin.base_url, api_key="sk-standin")
        model = OpenAIChatCompletionsModel(model="gpt-standin", openai_client=client)
        return Agent(name="refunds", model=model, tools=[refund])

    def key(self, index: int = 0) -> str:
        return f"openai-agents:{self.brain.calls[index][0]}"


ORDER_7 = {"order_id": "ord_7", "amount_usd": 42}


@pytest.fixture
def setup() -> Iterator[Setup]:
    brain = RefundBrain([(f"call_{uuid.uuid4().hex}", ORDER_7)])
    with ChatCompletionsStandIn(brain) as standin:
        yield Setup(brain, standin)


def server_options(server: ServerProcess) -> AskOptions:
    return {"server_url": server.url, "api_key": server.admin_token, "timeout_seconds": 900}


async def test_approved_call_runs_and_the_task_records_what_was_shown(
    aw_server: ServerProcess, setup: Setup
) -> None:
    run = asyncio.create_task(
        run_with_approvals(
            setup.agent(), "Refund order 7", run_options=RUN, **server_options(aw_server)
        )
    )
    completed = await decide(aw_server, setup.key(), {"approved": True})
    result = await asyncio.wait_for(run, 30)

    assert setup.ran == [ORDER_7]
    assert result.final_output == "refunded 42 USD on ord_7"
    assert result.interruptions == []
    assert completed["task"] == 'Allow refund(order_id="ord_7", amount_usd=42)?'
    assert completed["payload"] == {
        "tool": "refund",
        "arguments": ORDER_7,
        "call_id": setup.brain.calls[0][0],
        "agent": "refunds",
    }
    assert completed["response"] == {"approved": True}
    # The model was asked twice: the call, then the answer from the tool's result.
    assert len(setup.standin.requests) == 2


async def test_rejected_call_does_not_run_and_the_model_reads_the_message(
    aw_server: ServerProcess, setup: Setup
) -> None:
    run = asyncio.create_task(
        run_with_approvals(
            setup.agent(), "Refund order 7", run_options=RUN, **server_options(aw_server)
        )
    )
    message = "Order 7 was already refunded last week."
    completed = await decide(aw_server, setup.key(), {"approved": False, "message": message})
    result = await asyncio.wait_for(run, 30)

    assert setup.ran == []
    assert setup.brain.tool_messages == [message]
    assert result.final_output == message
    assert completed["response"] == {"approved": False, "message": message}


async def test_each_call_is_its_own_task(aw_server: ServerProcess, setup: Setup) -> None:
    setup.brain.calls = [
        (f"call_{uuid.uuid4().hex}", {"order_id": "ord_1", "amount_usd": 10}),
        (f"call_{uuid.uuid4().hex}", {"order_id": "ord_2", "amount_usd": 20}),
    ]
    run = asyncio.create_task(
        run_with_approvals(
            setup.agent(), "Refund both", run_options=RUN, **server_options(aw_server)
        )
    )
    await decide(aw_server, setup.key(1), {"approved": False, "message": "not this one"})
    await decide(aw_server, setup.key(0), {"approved": True})
    result = await asyncio.wait_for(run, 30)

    assert setup.ran == [{"order_id": "ord_1", "amount_usd": 10}]
    assert result.final_output == "refunded 10 USD on ord_1 | not this one"


async def test_a_restarted_process_resumes_from_the_saved_state(
    aw_server: ServerProcess, setup: Setup
) -> None:
    """The waiting process stops; a new agent object, from the string ``on_state`` kept,
    finds the same task (no second one), and the tool runs once, without asking the model
    for the call again."""
    saved: list[str] = []
    first = asyncio.create_task(
        run_with_approvals(
            setup.agent(),
            "Refund order 7",
            on_state=saved.append,
            run_options=RUN,
            **server_options(aw_server),
        )
    )
    opened = await task_with_key(aw_server, setup.key())
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(saved) == 1
    assert len(setup.standin.requests) == 1

    again = asyncio.create_task(
        resume_with_approvals(setup.agent(), saved[0], run_options=RUN, **server_options(aw_server))
    )
    completed = await decide(aw_server, setup.key(), {"approved": True})
    result = await asyncio.wait_for(again, 30)

    assert completed["id"] == opened["id"]
    assert len(await tasks_with_key(aw_server, setup.key())) == 1
    assert setup.ran == [ORDER_7]
    assert result.final_output == "refunded 42 USD on ord_7"
    assert len(setup.standin.requests) == 2


async def test_resolve_interruptions_applies_decisions_to_the_state(
    aw_server: ServerProcess, setup: Setup
) -> None:
    """The lower-level function: the caller runs and resumes the agent themselves."""
    agent = setup.agent()
    stopped = await Runner.run(agent, "Refund order 7", **RUN)
    assert [item.call_id for item in stopped.interruptions] == [setup.brain.calls[0][0]]
    state = stopped.to_state()
    resolving = asyncio.create_task(
        resolve_interruptions(state, key_prefix="mine", **server_options(aw_server))
    )
    await decide(aw_server, f"mine:{setup.brain.calls[0][0]}", {"approved": False})
    decided = await asyncio.wait_for(resolving, 30)
    assert [(item.name, decision) for item, decision in decided] == [
        ("refund", ToolDecision(approved=False))
    ]

    done = await Runner.run(agent, state, **RUN)
    assert setup.ran == []
    assert done.final_output == "A person denied this tool call."


def test_import_without_the_extra_names_it() -> None:
    code = (
        "import sys\n"
        "import awaithumans\n"
        "assert 'agents' not in sys.modules\n"
        "sys.modules['agents'] = None\n"
        "try:\n"
        "    import awaithumans.integrations.openai_agents\n"
        "except awaithumans.MissingExtraError as exc:\n"
        "    print(exc.code, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.startswith("EXTRA_NOT_INSTALLED ")
    assert 'pip install "awaithumans[openai-agents]"' in out
