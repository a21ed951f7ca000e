"""Pydantic AI's tools that require approval, decided by a person through a real awaithumans
server: approve (the tool runs), deny (the model reads the message, the tool does not run),
edit (the tool runs with the person's arguments); the task holds what was shown and decided.

The model is Pydantic AI's ``FunctionModel``: it calls the ``refund`` tool with the call ids
the test gives it, then answers with what the tool (or the denial) returned."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.run import AgentRunResult

from awaithumans import TaskCancelledError
from awaithumans.core import ASK_PARAMETERS
from awaithumans.integrations.pydantic_ai import (
    TIMEOUT_MESSAGE,
    AskOptions,
    approvals_capability,
    resolve_approvals,
    run_with_approvals,
)
from awaithumans.testing import ServerProcess
from tests.integrations._person import admin, decide, read_task, task_with_key, tasks_with_key

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def aw_server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


@dataclass
class RefundModel:
    """Plays the model: one response calling ``refund`` once per id in ``call_ids``, then a
    final text made of what each call returned (a result, or a denial's message)."""

    call_ids: list[str]
    arguments: list[dict[str, Any]] = field(
        default_factory=lambda: [{"order_id": "ord_7", "amount_usd": 42}]
    )
    returned: list[str] = field(default_factory=list)
    #: The run's conversation id, part of each task's key.
    conversation: str = field(default_factory=lambda: f"conv-{uuid.uuid4().hex}")

    @property
    def run_options(self) -> dict[str, Any]:
        return {"conversation_id": self.conversation}

    def key(self, index: int = 0, prefix: str = "pydantic-ai") -> str:
        """The idempotency key of the task for the ``index``-th call."""
        return f"{prefix}:{self.conversation}:{self.call_ids[index]}"

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        results = [part for part in messages[-1].parts if isinstance(part, ToolReturnPart)]
        if results:
            self.returned.extend(str(part.content) for part in results)
            return ModelResponse(parts=[TextPart(" | ".join(str(p.content) for p in results))])
        return ModelResponse(
            parts=[
                ToolCallPart("refund", args, tool_call_id=call_id)
                for call_id, args in zip(self.call_ids, self.arguments, strict=True)
            ]
        )


def refund_agent(model: RefundModel, ran: list[dict[str, Any]]) -> Agent[None, str]:
    agent = Agent(FunctionModel(model), name="refunds")

    @agent.tool_plain(requires_approval=True)
    def refund(order_id: str, amount_usd: int) -> str:
        """Send money back to a customer."""
        ran.append({"order_id": order_id, "amount_usd": amount_usd})
        return f"refunded {amount_usd} USD on {order_id}"

    return agent


def server_options(server: ServerProcess) -> AskOptions:
    return {"server_url": server.url, "api_key": server.admin_token, "timeout_seconds": 900}


def no_calls() -> list[dict[str, Any]]:
    """Where the ``refund`` tool writes the arguments of each call it ran."""
    return []


def call_id() -> str:
    return f"call_{uuid.uuid4().hex}"


async def test_approved_call_runs_and_the_task_records_what_was_shown(
    aw_server: ServerProcess,
) -> None:
    model, ran = RefundModel([call_id()]), no_calls()
    agent = refund_agent(model, ran)
    run = asyncio.create_task(
        run_with_approvals(
            agent, "Refund order 7", run_options=model.run_options, **server_options(aw_server)
        )
    )
    key = model.key()
    completed = await decide(aw_server, key, {"approved": True})
    result = await asyncio.wait_for(run, 30)

    assert ran == [{"order_id": "ord_7", "amount_usd": 42}]
    assert result.output == "refunded 42 USD on ord_7"
    assert completed["task"] == 'Allow refund(order_id="ord_7", amount_usd=42)?'
    assert completed["payload"] == {
        "tool": "refund",
        "arguments": {"order_id": "ord_7", "amount_usd": 42},
        "call_id": model.call_ids[0],
        "agent": "refunds",
    }
    assert completed["response"] == {"approved": True}


async def test_denied_call_does_not_run_and_the_model_reads_the_message(
    aw_server: ServerProcess,
) -> None:
    model, ran = RefundModel([call_id()]), no_calls()
    agent = refund_agent(model, ran)
    run = asyncio.create_task(
        run_with_approvals(
            agent, "Refund order 7", run_options=model.run_options, **server_options(aw_server)
        )
    )
    message = "Order 7 was already refunded last week."
    await decide(aw_server, model.key(), {"approved": False, "message": message})
    result = await asyncio.wait_for(run, 30)

    assert ran == []
    assert model.returned == [message]
    assert result.output == message


async def test_edited_arguments_are_what_runs(aw_server: ServerProcess) -> None:
    model, ran = RefundModel([call_id()]), no_calls()
    agent = refund_agent(model, ran)
    run = asyncio.create_task(
        run_with_approvals(
            agent, "Refund order 7", run_options=model.run_options, **server_options(aw_server)
        )
    )
    edited = {"order_id": "ord_7", "amount_usd": 30}
    completed = await decide(aw_server, model.key(), {"approved": True, "arguments": edited})
    result = await asyncio.wait_for(run, 30)

    assert ran == [edited]
    assert result.output == "refunded 30 USD on ord_7"
    # What the person saw (the model's arguments) and what they decided, both on the task.
    assert completed["payload"]["arguments"] == {"order_id": "ord_7", "amount_usd": 42}
    assert completed["response"]["arguments"] == edited


async def test_each_call_is_its_own_task(aw_server: ServerProcess) -> None:
    model = RefundModel(
        [call_id(), call_id()],
        arguments=[
            {"order_id": "ord_1", "amount_usd": 10},
            {"order_id": "ord_2", "amount_usd": 20},
        ],
    )
    ran: list[dict[str, Any]] = []
    run = asyncio.create_task(
        run_with_approvals(
            refund_agent(model, ran),
            "Refund both",
            run_options=model.run_options,
            **server_options(aw_server),
        )
    )
    first, second = model.key(0), model.key(1)
    await decide(aw_server, second, {"approved": False, "message": "not this one"})
    await decide(aw_server, first, {"approved": True})
    result = await asyncio.wait_for(run, 30)

    assert ran == [{"order_id": "ord_1", "amount_usd": 10}]
    assert result.output == "refunded 10 USD on ord_1 | not this one"


async def test_a_run_picked_up_from_saved_messages_finds_the_same_task(
    aw_server: ServerProcess,
) -> None:
    """The process waiting for the person stops; a new one, from the messages ``on_pending``
    saved, resumes the same task (no second one) and the tool runs once."""
    model, ran = RefundModel([call_id()]), no_calls()
    saved: list[bytes] = []

    def save(messages: list[ModelMessage], requests: DeferredToolRequests) -> None:
        assert [part.tool_call_id for part in requests.approvals] == model.call_ids
        saved.append(ModelMessagesTypeAdapter.dump_json(messages))

    key = model.key()
    first = asyncio.create_task(
        run_with_approvals(
            refund_agent(model, ran),
            "Refund order 7",
            on_pending=save,
            run_options=model.run_options,
            **server_options(aw_server),
        )
    )
    opened = await task_with_key(aw_server, key)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert opened["status"] in {"created", "assigned", "notified"}

    history = ModelMessagesTypeAdapter.validate_json(saved[-1])
    again = asyncio.create_task(
        run_with_approvals(
            refund_agent(model, ran), message_history=history, **server_options(aw_server)
        )
    )
    completed = await decide(aw_server, key, {"approved": True})
    result = await asyncio.wait_for(again, 30)

    assert completed["id"] == opened["id"]
    assert len(await tasks_with_key(aw_server, key)) == 1
    assert ran == [{"order_id": "ord_7", "amount_usd": 42}]
    assert result.output == "refunded 42 USD on ord_7"


async def test_resolve_approvals_gives_results_to_continue_the_run(
    aw_server: ServerProcess,
) -> None:
    """The lower-level function: the caller runs the agent and continues it themselves."""
    model, ran = RefundModel([call_id()]), no_calls()
    agent = refund_agent(model, ran)
    stopped: AgentRunResult[str | DeferredToolRequests] = await agent.run(
        "Refund order 7", output_type=[str, DeferredToolRequests]
    )
    assert isinstance(stopped.output, DeferredToolRequests)
    resolving = asyncio.create_task(
        resolve_approvals(stopped.output, key_prefix="mine", **server_options(aw_server))
    )
    edited = {"order_id": "ord_7", "amount_usd": 5}
    await decide(aw_server, f"mine:{model.call_ids[0]}", {"approved": True, "arguments": edited})
    results = await asyncio.wait_for(resolving, 30)
    assert ran == []  # nothing runs until the run is continued with the results

    done: AgentRunResult[str | DeferredToolRequests] = await agent.run(
        message_history=stopped.all_messages(),
        deferred_tool_results=results,
        output_type=[str, DeferredToolRequests],
    )
    assert ran == [edited]
    assert done.output == "refunded 5 USD on ord_7"


async def test_capability_resolves_inside_one_run(aw_server: ServerProcess) -> None:
    model, ran = RefundModel([call_id()]), no_calls()
    agent = refund_agent(model, ran)
    run = asyncio.create_task(
        agent.run(
            "Refund order 7",
            conversation_id=model.conversation,
            capabilities=[approvals_capability(key_prefix="inline", **server_options(aw_server))],
        )
    )
    completed = await decide(aw_server, model.key(prefix="inline"), {"approved": True})
    result = await asyncio.wait_for(run, 30)

    assert ran == [{"order_id": "ord_7", "amount_usd": 42}]
    assert result.output == "refunded 42 USD on ord_7"
    assert (await read_task(aw_server, completed["id"]))["payload"]["agent"] == "refunds"


async def test_a_call_id_repeated_in_another_conversation_is_another_task(
    aw_server: ServerProcess,
) -> None:
    """Models that number their calls (or ``TestModel``, whose ids are fixed) repeat ids; the
    conversation id in the key keeps one conversation's answer from deciding another's."""
    same = call_id()
    answered = []
    for message in ("first: no", "second: no"):
        model, ran = RefundModel([same]), no_calls()
        run = asyncio.create_task(
            run_with_approvals(
                refund_agent(model, ran),
                "Refund order 7",
                run_options=model.run_options,
                **server_options(aw_server),
            )
        )
        answered.append(
            await decide(aw_server, model.key(), {"approved": False, "message": message})
        )
        assert (await asyncio.wait_for(run, 30)).output == message
        assert ran == []
    assert answered[0]["id"] != answered[1]["id"]


async def test_a_cancelled_task_stops_the_run_and_leaves_the_other_open(
    aw_server: ServerProcess,
) -> None:
    """``await_human``'s errors reach the caller (here ``TaskCancelledError``); the other
    call's wait stops, its task stays open for a re-run, and no tool ran."""
    model = RefundModel(
        [call_id(), call_id()],
        arguments=[
            {"order_id": "ord_1", "amount_usd": 10},
            {"order_id": "ord_2", "amount_usd": 20},
        ],
    )
    ran = no_calls()
    run = asyncio.create_task(
        run_with_approvals(
            refund_agent(model, ran),
            "Refund both",
            run_options=model.run_options,
            **server_options(aw_server),
        )
    )
    cancelled = await task_with_key(aw_server, model.key(0))
    other = await task_with_key(aw_server, model.key(1))
    async with admin(aw_server) as http:
        done = await http.post(f"/api/tasks/{cancelled['id']}/cancel")
    assert done.status_code == 200, done.text
    with pytest.raises(TaskCancelledError):
        await asyncio.wait_for(run, 30)

    assert ran == []
    assert (await read_task(aw_server, other["id"]))["status"] not in {"cancelled", "completed"}


def test_options_are_await_human_parameters() -> None:
    assert set(AskOptions.__annotations__) <= set(ASK_PARAMETERS)
    assert TIMEOUT_MESSAGE  # what a timed-out call's denial tells the model


def test_import_without_the_extra_names_it_and_awaithumans_loads_no_integration() -> None:
    code = (
        "import sys\n"
        "import awaithumans\n"
        "assert not [m for m in sys.modules if m.startswith('awaithumans.integrations')]\n"
        "assert 'pydantic_ai' not in sys.modules\n"
        "sys.modules['pydantic_ai'] = None\n"
        "try:\n"
        "    import awaithumans.integrations.pydantic_ai\n"
        "except awaithumans.MissingExtraError as exc:\n"
        "    print(exc.code, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.startswith("EXTRA_NOT_INSTALLED ")
    assert 'pip install "awaithumans[pydantic-ai]"' in out
