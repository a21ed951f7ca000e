"""A Hypothesis state machine over the HTTP API, against the lifecycle model.

``test_lifecycle_properties.py`` already holds the model of the task lifecycle over HTTP
(``Run``: who may see, claim, answer and cancel what, every task's status, answer, audit
trail and outbox rows, checked after each call) and drives it with random programs. This
drives the same model as a ``RuleBasedStateMachine`` instead, whose rules Hypothesis picks
step by step from what exists so far, and adds what the programs do not: reads and lists
as each caller, polls that end by their short timeout, repeats of earlier creates, and a
hook on every client that records any 5xx.

After every step (invariants): no response was a 5xx; each task's stored status, assignee,
answer, audit trail and outbox rows are the model's; a completed task's response is the
answer that was accepted; a finished task never changes again. In-process app on a real
SQLite file, derandomised and bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from awaithumans.core._wire import TaskStatus
from tests._app_fixtures import make_settings, running_app
from tests.server.test_lifecycle_properties import (
    SLOTS,
    VARIANTS,
    Actor,
    Cancel,
    ClaimOp,
    Complete,
    Create,
    Expire,
    Poll,
    Run,
    TaskModel,
    World,
    add_user,
    assert_refused,
    ghost_id,
    invalid_answers,
    valid_answers,
)

T = TypeVar("T")

# Bounded: 40 examples of up to 20 steps (about 800 steps), 20-30 s on this machine.
MAX_EXAMPLES = 40
STEPS = 20
KEYS = SLOTS  # idempotency keys per example (Run's); slot KEYS names no task
SHORT_POLL = 1  # seconds: the smallest timeout the API takes
STEP_TIMEOUT = 60.0

ACTORS = ("admin", "olga", "alice", "bob")
actors = st.sampled_from(ACTORS)
create_slots = st.integers(0, KEYS - 1)
variants = st.integers(0, len(VARIANTS) - 1)
statuses = st.sampled_from([None, *TaskStatus])


@dataclass
class ShortPoll:
    """A poll with the shortest timeout, left running while the machine goes on."""

    task: TaskModel
    start: int  # index into task.history when it was sent
    sent: float
    job: asyncio.Task[httpx.Response]
    ended: float | None = None


@dataclass
class Tally:
    """What the machine did, for the report (-s) and for the test's own assertions."""

    examples: int = 0
    steps: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    landed: Counter[str] = field(default_factory=Counter)  # calls that moved a task
    server_errors: list[str] = field(default_factory=list)


class Portal:
    """Runs the model's coroutines on the app's loop from Hypothesis's (worker) thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def __call__(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=STEP_TIMEOUT)


def has_tasks(machine: Any) -> bool:
    return bool(machine.run.tasks)


def machine_for(world: World, portal: Portal, tally: Tally) -> type[RuleBasedStateMachine]:
    class ApiMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.run = Run(world)  # fresh idempotency keys: each example its own tasks
            self.changed: TaskModel | None = None
            self.expired: TaskModel | None = None
            self.short_polls: list[ShortPoll] = []
            # A finished task's view when first seen finished: it must never change.
            self.frozen: dict[str, dict[str, Any]] = {}
            self.failed = False
            self.deadline_passed = False
            self.steps = 0
            tally.examples += 1

        def call(self, coro: Coroutine[Any, Any, T]) -> T:
            try:
                return portal(coro)
            except BaseException:
                self.failed = True
                raise

        def counted(self, name: str) -> None:
            self.steps += 1
            tally.steps += 1
            tally.rules[name] += 1

        # -- rules: the lifecycle model's calls ----------------------------------------

        @rule(actor=actors, slot=create_slots, variant=variants)
        def create(self, actor: str, slot: int, variant: int) -> None:
            self.counted("create")
            self.changed = self.call(self.run.create(Create(actor, slot, variant)))

        @precondition(has_tasks)
        @rule(data=st.data())
        def repeat_create(self, data: st.DataObject) -> None:
            """The same credential sends an earlier create again: the same task comes back."""
            self.counted("repeat create")
            (actor, slot), task = data.draw(st.sampled_from(sorted(self.run.scoped.items())))
            before = len(self.run.scoped)
            assert self.call(self.run.create(Create(actor, slot, task.variant))) is None
            assert len(self.run.scoped) == before

        def slot(self, data: st.DataObject) -> int:
            """A task made in this example, or (now and then) an id no task has."""
            made = sorted(self.run.tasks)
            return data.draw(st.sampled_from([*made, *made, *made, KEYS]), label="slot")

        @precondition(has_tasks)
        @rule(actor=actors, data=st.data())
        def claim(self, actor: str, data: st.DataObject) -> None:
            self.counted("claim")
            self.changed = self.call(self.run.claim(ClaimOp(actor, self.slot(data))))

        @precondition(has_tasks)
        @rule(actor=actors, data=st.data(), answer=valid_answers)
        def complete(self, actor: str, data: st.DataObject, answer: dict[str, Any]) -> None:
            self.counted("complete")
            op = Complete(actor, self.slot(data), answer, True)
            self.changed = self.call(self.run.complete(op))

        @precondition(has_tasks)
        @rule(actor=actors, data=st.data(), answer=invalid_answers)
        def complete_invalid(self, actor: str, data: st.DataObject, answer: dict[str, Any]) -> None:
            self.counted("complete (invalid answer)")
            op = Complete(actor, self.slot(data), answer, False)
            assert self.call(self.run.complete(op)) is None

        @precondition(has_tasks)
        @rule(actor=actors, data=st.data())
        def cancel(self, actor: str, data: st.DataObject) -> None:
            self.counted("cancel")
            self.changed = self.call(self.run.cancel(Cancel(actor, self.slot(data))))

        @precondition(has_tasks)
        @rule(actor=actors, data=st.data())
        def wait(self, actor: str, data: st.DataObject) -> None:
            """A long-poll that returns at the task's next change (checked at the end)."""
            self.counted("wait")
            slot = self.slot(data)
            # The model's poll counts the hub's waiters to know it is parked; short polls
            # ending meanwhile would move that count, so none may be in flight.
            self.call(self.drain_short_polls())
            self.call(self.run.poll(Poll(actor, slot)))

        # One deadline per example, in its second half: a task that times out is finished
        # for every later step, so claims and answers get their turn first.
        @precondition(
            lambda self: has_tasks(self) and not self.deadline_passed and self.steps >= STEPS // 2
        )
        @rule(data=st.data())
        def expire(self, data: st.DataObject) -> None:
            self.counted("expire")
            self.deadline_passed = True
            slot = data.draw(st.sampled_from(sorted(self.run.tasks)), label="slot")
            self.changed, self.expired = self.call(self.run.expire(Expire(slot)))

        # -- rules: reads -------------------------------------------------------------------

        @precondition(has_tasks)
        @rule(actor=actors, data=st.data())
        def get(self, actor: str, data: st.DataObject) -> None:
            self.counted("get")
            task = self.run.tasks.get(self.slot(data))
            self.call(self.get_task(self.run.actor(actor), task))

        async def get_task(self, who: Actor, task: TaskModel | None) -> None:
            resp = await who.client.get(f"/api/tasks/{task.id if task else ghost_id()}")
            if task is None or not self.run.can_see(who, task):
                assert_refused(resp, 404, "TASK_NOT_FOUND")
                return
            assert resp.status_code == 200, resp.text
            view = resp.json()
            assert view["id"] == task.id
            assert view["status"] == task.status.value
            assert view["assigned_to_user_id"] == self.run.user_id(task.assignee)
            assert view["response"] == (
                task.response if task.status is TaskStatus.COMPLETED else None
            )

        @precondition(has_tasks)
        @rule(actor=actors, status=statuses)
        def list_tasks(self, actor: str, status: TaskStatus | None) -> None:
            self.counted("list")
            self.call(self.list_as(self.run.actor(actor), status))

        async def list_as(self, who: Actor, status: TaskStatus | None) -> None:
            params: dict[str, Any] = {"limit": 200}
            if status is not None:
                params["status"] = status.value
            resp = await who.client.get("/api/tasks", params=params)
            assert resp.status_code == 200, resp.text
            mine = {t.id: t for t in self.run.scoped.values()}
            # Earlier examples' tasks are in the same database: compare this example's.
            listed = {item["id"]: item for item in resp.json()["items"] if item["id"] in mine}
            expected = {
                task.id
                for task in mine.values()
                if self.run.can_see(who, task) and status in (None, task.status)
            }
            assert set(listed) == expected, (who.name, status, set(listed), expected)
            for task_id, item in listed.items():
                assert item["status"] == mine[task_id].status.value

        @precondition(has_tasks)
        @rule(actor=actors, data=st.data())
        def poll_short(self, actor: str, data: st.DataObject) -> None:
            """A poll with a 1 s timeout: it returns by then, changed or not."""
            self.counted("poll (1 s timeout)")
            task = self.run.tasks.get(self.slot(data))
            self.call(self.start_short_poll(self.run.actor(actor), task))

        async def start_short_poll(self, who: Actor, task: TaskModel | None) -> None:
            url = f"/api/tasks/{task.id if task else ghost_id()}/poll"
            params = {"timeout": SHORT_POLL}
            if task is None or not self.run.can_see(who, task):
                assert_refused(await who.client.get(url, params=params), 404, "TASK_NOT_FOUND")
                return
            poll = ShortPoll(
                task,
                len(task.history) - 1,
                time.monotonic(),
                asyncio.create_task(who.client.get(url, params=params)),
            )

            def ended(_job: object) -> None:
                poll.ended = time.monotonic()

            poll.job.add_done_callback(ended)
            self.short_polls.append(poll)

        async def drain_short_polls(self) -> None:
            """Wait for every short poll (each ends by its timeout) and check its answer."""
            polls, self.short_polls = self.short_polls, []
            for poll in polls:
                resp = await asyncio.wait_for(poll.job, SHORT_POLL + 10)
                self.run.check_poll(resp, poll.task, poll.start)
                assert poll.ended is not None
                took = poll.ended - poll.sent
                assert took < SHORT_POLL + 10, took
                if len(poll.task.history) == poll.start + 1 and not poll.task.status.is_terminal:
                    # Nothing has happened to the task since it was sent: it waited out its
                    # timeout, and answered the status the task had.
                    assert took >= SHORT_POLL * 0.9, took
                    assert resp.json()["status"] == poll.task.status.value

        # -- after every step -------------------------------------------------------------

        @invariant()
        def no_server_errors(self) -> None:
            assert not tally.server_errors, tally.server_errors

        @invariant()
        def stored_state_is_the_models(self) -> None:
            changed, expired = self.changed, self.expired
            self.changed = self.expired = None
            if changed is not None:
                tally.landed[changed.status.value if changed.history[1:] else "created"] += 1
            # Statuses, assignees, answers, audit trails, outbox rows; refused calls and
            # other tasks' moves change nothing (Run.check).
            self.call(self.run.check(changed, expired))
            for task in self.run.scoped.values():
                if not task.status.is_terminal:
                    continue
                view = dict(task.view)
                first = self.frozen.setdefault(task.id, view)
                if task is expired:
                    # The test itself moves timeout_at when it expires a task.
                    first["timeout_at"] = view["timeout_at"]
                assert view == first, (task.id, first, view)
                if task.status is TaskStatus.COMPLETED:
                    assert view["response"] == task.response

        def teardown(self) -> None:
            if self.failed:
                self.call(self.abandon())
                return
            self.call(self.drain_short_polls())
            # Ends every open task (waking the long-polls) and checks each long-poll's answer.
            self.call(self.run.finish())

        async def abandon(self) -> None:
            for poll in self.short_polls:
                poll.job.cancel()
            await asyncio.gather(*(p.job for p in self.short_polls), return_exceptions=True)
            await self.run.abandon()

    return ApiMachine


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'machine.db'}"
    async with running_app(make_settings(url, scheduler_max_sleep_seconds=0.2)) as (app, admin):
        actors = {"admin": Actor("admin", admin, "admin", "admin", True)}
        # Two reviewers who see only their own and their assigned tasks, and one operator.
        for name, operator in (("alice", False), ("bob", False), ("olga", True)):
            actors[name] = await add_user(app, admin, name, operator=operator)
        try:
            yield World(app, app.state.ctx, actors)
        finally:
            for actor in actors.values():
                if actor.kind == "user":
                    await actor.client.aclose()


async def test_api_state_machine_follows_the_model(world: World) -> None:
    tally = Tally()

    async def record_server_errors(resp: httpx.Response) -> None:
        if resp.status_code >= 500:
            await resp.aread()
            tally.server_errors.append(f"{resp.request.method} {resp.request.url}: {resp.text}")

    for actor in world.actors.values():
        actor.client.event_hooks["response"].append(record_server_errors)

    machine = machine_for(world, Portal(asyncio.get_running_loop()), tally)
    started = time.monotonic()
    failures = 0
    try:
        # Hypothesis drives the machine synchronously, in a worker thread; every call it
        # makes runs on this loop, where the app's lifespan lives (Portal).
        await asyncio.to_thread(run_machine, machine)
    except BaseException:
        failures = 1
        raise
    finally:
        print(
            f"\nAPI state machine: {tally.examples} examples, {tally.steps} steps in"
            f" {time.monotonic() - started:.1f} s, {len(tally.server_errors)} 5xx,"
            f" {failures} failures"
        )
        for name, count in sorted(tally.rules.items()):
            print(f"  {count:4d}  {name}")
        print("  tasks moved to: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.landed.items())))
    assert tally.steps >= MAX_EXAMPLES
    for name in ("create", "repeat create", "claim", "complete", "cancel", "get", "list"):
        assert tally.rules[name] > 0, (name, tally.rules)
    # Calls landed, not only refusals: tasks were made and moved to every status the API
    # and the scheduler reach.
    for status in ("created", "in_progress", "completed", "cancelled", "timed_out"):
        assert tally.landed[status] > 0, (status, tally.landed)


def run_machine(machine: type[RuleBasedStateMachine]) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
