"""``awaithumans.testing.fake_human``: agents tested against an in-process server and a
fake person answering by rule, through the server's real answer path.

The plain SDK (blocking and async), LangGraph (its real interrupt and a real checkpointer,
resumed with ``settle``) and Temporal (a real dev server; the in-process server signals the
workflow) each get their answer at once; an unmatched task and a refused answer fail fast
and fail the test at the end, naming the task.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any, TypedDict

import httpx
import pytest
from pydantic import BaseModel

from awaithumans import approvals_of, await_human, await_human_sync, is_default
from awaithumans.core._errors import TaskCancelledError
from awaithumans.testing.fake_human import Asked, FakeHuman, FakeHumanError


class Refund(BaseModel):
    order_id: str
    amount: int


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


class Label(BaseModel):
    label: str


def ask_refund(amount: int = 40, **extra: Any) -> Any:
    return await_human_sync(
        task=extra.pop("task", f"Approve the ${amount} refund?"),
        payload_schema=Refund,
        payload=Refund(order_id=f"A-{uuid.uuid4().hex[:6]}", amount=amount),
        response_schema=extra.pop("response_schema", Decision),
        timeout_seconds=3600,
        **extra,
    )


def audit_actors(human: FakeHuman, task_id: str) -> list[tuple[str, str | None]]:
    got = httpx.get(
        f"{human.url}/api/tasks/{task_id}/audit",
        headers={"Authorization": f"Bearer {human.admin_token}"},
    )
    got.raise_for_status()
    return [(e["action"], e.get("actor_label")) for e in got.json()]


def test_a_rule_answers_at_once_through_the_real_answer_path(fake_human: FakeHuman) -> None:
    fake_human.answer(title_contains="REFUND", with_=Decision(approved=True, notes="ok"))
    started = time.monotonic()
    decision = ask_refund(40)
    assert decision == Decision(approved=True, notes="ok")
    assert time.monotonic() - started < 10
    (asked,) = fake_human.asked
    assert (asked.task, asked.outcome, asked.response) == (
        "Approve the $40 refund?",
        "answered",
        {"approved": True, "notes": "ok"},
    )
    assert asked.payload is not None
    assert asked.payload["amount"] == 40
    assert asked.rule == "answer(title_contains='REFUND')"
    assert audit_actors(fake_human, asked.task_id)[-1] == (
        "completed",
        "fake human (awaithumans.testing)",
    )


def test_reject_answers_not_approved_with_the_notes(fake_human: FakeHuman) -> None:
    fake_human.reject(matches=r"\$9\d\d refund", notes="too large")
    fake_human.answer(title_contains="refund", with_={"approved": True})
    assert ask_refund(950) == Decision(approved=False, notes="too large")
    assert ask_refund(20) == Decision(approved=True)
    assert [a.outcome for a in fake_human.asked] == ["rejected", "answered"]


def test_an_answer_can_be_made_from_the_task(fake_human: FakeHuman) -> None:
    def by_amount(asked: Asked) -> Decision:
        assert asked.payload is not None
        return Decision(approved=asked.payload["amount"] < 100)

    fake_human.answer(
        where=lambda a: a.payload is not None and "amount" in a.payload, with_=by_amount
    )
    assert ask_refund(50).approved is True
    assert ask_refund(500).approved is False


def test_times_limits_a_rule_and_the_next_one_applies(fake_human: FakeHuman) -> None:
    fake_human.answer(title_contains="refund", with_=Decision(approved=True), times=1)
    fake_human.reject(title_contains="refund")
    assert [ask_refund().approved, ask_refund().approved] == [True, False]


async def test_async_agents_and_rules_added_after_the_agent_asked(fake_human: FakeHuman) -> None:
    fake_human.never(title_contains="later")
    waiting = asyncio.create_task(
        await_human(
            task="Label this later?",
            payload_schema=Refund,
            payload=Refund(order_id="A-9", amount=1),
            response_schema=Label,
            timeout_seconds=3600,
        )
    )
    # The task waits on a never rule; answering it needs a rule placed before that one.
    await asyncio.to_thread(fake_human.wait_for_tasks, 1)
    assert fake_human.asked[0].outcome == "left"
    assert not waiting.done()
    async with httpx.AsyncClient(
        base_url=fake_human.url, headers={"Authorization": f"Bearer {fake_human.admin_token}"}
    ) as http:
        done = await http.post(
            f"/api/tasks/{fake_human.asked[0].task_id}/complete", json={"response": {"label": "x"}}
        )
    assert done.status_code == 200, done.text
    assert await asyncio.wait_for(waiting, 10) == Label(label="x")


def test_a_rule_added_while_the_agent_waits_answers_it() -> None:
    with FakeHuman(strict=False) as human:
        result: list[Decision] = []
        agent = threading.Thread(
            target=lambda: result.append(
                ask_refund(7, server_url=human.url, api_key=human.admin_token)
            )
        )
        agent.start()
        human.wait_for_tasks(1)
        human.answer(title_contains="refund", with_=Decision(approved=True))
        agent.join(10)
        assert result == [Decision(approved=True)]


def test_time_out_applies_the_agents_default(fake_human: FakeHuman) -> None:
    fake_human.time_out(title_contains="refund")
    started = time.monotonic()
    answer = ask_refund(on_timeout=Decision(approved=False, notes="nobody answered"))
    assert answer == Decision(approved=False, notes="nobody answered")
    assert is_default(answer)
    assert time.monotonic() - started < 10
    assert fake_human.asked[0].outcome == "timed_out"


def test_an_unmatched_task_is_cancelled_at_once_and_fails_the_test() -> None:
    human = FakeHuman().start()
    try:
        with pytest.raises(TaskCancelledError):
            ask_refund(3, server_url=human.url, api_key=human.admin_token)
    finally:
        with pytest.raises(FakeHumanError, match=r"'Approve the \$3 refund\?'.*no rule matches"):
            human.close()


def test_an_answer_that_does_not_fit_is_refused_and_fails_the_test() -> None:
    human = FakeHuman().start()
    human.answer(title_contains="refund", with_={"approved": "maybe"})
    try:
        with pytest.raises(TaskCancelledError):
            ask_refund(3, server_url=human.url, api_key=human.admin_token)
    finally:
        with pytest.raises(FakeHumanError, match="does not fit the response schema"):
            human.close()


def test_reject_needs_an_approved_field() -> None:
    human = FakeHuman().start()
    human.reject(title_contains="label")
    try:
        with pytest.raises(TaskCancelledError):
            ask_refund(
                task="Pick a label",
                response_schema=Label,
                server_url=human.url,
                api_key=human.admin_token,
            )
    finally:
        with pytest.raises(FakeHumanError, match="boolean 'approved' field"):
            human.close()


class Flow(TypedDict, total=False):
    amount: int
    approved: bool


def refund_graph() -> Any:
    """A one-node graph whose node asks through the LangGraph adapter (in-memory saver)."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph

    from awaithumans.adapters.langgraph import await_human as node_await_human

    async def review(state: Flow) -> Flow:
        decision = await node_await_human(
            task=f"Approve the ${state['amount']} refund?",
            payload_schema=Refund,
            payload=Refund(order_id="G-1", amount=state["amount"]),
            response_schema=Decision,
            timeout_seconds=3600,
        )
        return {"approved": decision.approved}

    builder = StateGraph(Flow)
    builder.add_node("review", review)
    builder.add_edge(START, "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=InMemorySaver())


def thread() -> Any:
    return {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:8]}"}}


async def test_a_langgraph_node_is_resumed_by_settle(fake_human: FakeHuman) -> None:
    graph, config = refund_graph(), thread()
    fake_human.answer(title_contains="refund", with_=Decision(approved=True))
    first = await graph.ainvoke({"amount": 70}, config)
    assert "__interrupt__" in first  # the node asked and the graph paused
    state = await fake_human.settle(graph, config)
    assert state.values == {"amount": 70, "approved": True}
    assert not state.tasks


async def test_settle_returns_at_once_on_a_task_nobody_will_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeHuman(strict=False) as human:
        for name, value in human.env().items():
            monkeypatch.setenv(name, value)
        graph, config = refund_graph(), thread()
        await graph.ainvoke({"amount": 5}, config)
        await asyncio.to_thread(human.wait_for_tasks, 1)
        started = time.monotonic()
        state = await human.settle(graph, config, timeout=20)
        assert time.monotonic() - started < 5
        assert state.tasks  # still waiting: no rule matched and strict is off
        assert human.asked[0].outcome == "pending"


def test_a_task_needing_two_approvals_gets_them_from_two_fake_people(
    fake_human: FakeHuman,
) -> None:
    fake_human.answer(title_contains="refund", with_=Decision(approved=True))
    decision = ask_refund(600, approvals_required=2)
    assert decision == Decision(approved=True)
    votes = approvals_of(decision)
    assert [(v.user_id, v.approved) for v in votes] == [
        ("fake-human", True),
        ("fake-human-2", True),
    ]
    actors = [label for action, label in audit_actors(fake_human, fake_human.asked[0].task_id)]
    assert actors[-2:] == ["fake human (awaithumans.testing)", "fake human 2 (awaithumans.testing)"]


def unanswered_then_failing() -> None:
    """A test body whose task matches no rule and which then fails on its own."""
    with FakeHuman() as human:
        with pytest.raises(TaskCancelledError):
            ask_refund(3, server_url=human.url, api_key=human.admin_token)
        raise ZeroDivisionError("the test's own failure")


def test_a_failing_test_is_not_hidden_by_the_fake_humans_complaint() -> None:
    # The test's own error comes out, not FakeHumanError about the unmatched task.
    with pytest.raises(ZeroDivisionError, match="the test's own failure"):
        unanswered_then_failing()
