"""Properties of the task lifecycle.

Two layers:

* the transition table itself (``lifecycle.ALLOWED`` and friends), checked exhaustively;
* random sequences of API calls (create, replay, claim, answer, cancel, long-poll, and the
  timeout scheduler) by the admin token and by directory users, run against the in-process
  app on SQLite and on PostgreSQL, with every response and the whole stored state compared
  against a small model after each step.

``test_api_state_machine.py`` drives the same model (``Run``) as a Hypothesis state machine.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from sqlalchemy import func, select, text, update

from awaithumans.core._wire import TERMINAL_STATUSES, TaskStatus
from awaithumans.server.auth import SESSION_COOKIE
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import OutboxRow, TaskRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.services.lifecycle import (
    ALLOWED,
    ANSWERABLE,
    Channel,
    Moved,
    Refused,
    can_move,
    is_terminal,
    transition,
)
from awaithumans.server.services.task_actions import Claim
from tests._app_fixtures import make_settings, running_app

S = TaskStatus
ALL = frozenset(TaskStatus)
OPEN = ALL - TERMINAL_STATUSES

# --------------------------------------------------------------------------------------
# The transition table
# --------------------------------------------------------------------------------------


def _reachable(start: TaskStatus) -> set[TaskStatus]:
    seen = {start}
    todo = deque([start])
    while todo:
        for nxt in ALLOWED.get(todo.popleft(), frozenset()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_terminal_statuses_have_no_way_out() -> None:
    for status in TERMINAL_STATUSES:
        assert status not in ALLOWED
        assert is_terminal(status)
        assert status.is_terminal
        assert not any(can_move(status, target) for target in ALL), status


def test_every_open_status_has_a_way_out() -> None:
    # The keys of ALLOWED are exactly the open statuses: nothing open is a dead end.
    assert set(ALLOWED) == OPEN
    for status in OPEN:
        assert not is_terminal(status)
        assert ALLOWED[status], status
        assert _reachable(status) & TERMINAL_STATUSES, status


def test_every_status_is_reachable_from_created() -> None:
    assert _reachable(S.CREATED) == ALL


def test_answerable_contains_no_terminal_status() -> None:
    assert not ANSWERABLE & TERMINAL_STATUSES
    assert set(ALLOWED) >= ANSWERABLE


def test_table_shape() -> None:
    for source, targets in ALLOWED.items():
        assert source not in targets, f"{source} may move to itself"
        assert S.CREATED not in targets, "created is only ever the first status"
        assert targets <= ALL
    # Every open task can be closed by its owner and by the scheduler.
    for status in OPEN:
        assert can_move(status, S.CANCELLED), status
        assert can_move(status, S.TIMED_OUT), status
    # A human can always get an answer in from an answerable status (directly, or through
    # a verifier), and the claim action's sources can all move to in_progress.
    for status in ANSWERABLE:
        assert can_move(status, S.SUBMITTED), status
    for status in Claim.allowed_from or frozenset():
        assert can_move(status, S.IN_PROGRESS), status


@given(st.sampled_from(list(TaskStatus)), st.sampled_from(list(TaskStatus)))
def test_can_move_agrees_with_the_table(current: TaskStatus, target: TaskStatus) -> None:
    assert can_move(current, target) == (target in ALLOWED.get(current, frozenset()))
    if can_move(current, target):
        assert not current.is_terminal
        assert current != target


# --------------------------------------------------------------------------------------
# Fixture: the app with a few directory users, each with a signed-in client
# --------------------------------------------------------------------------------------

PAYLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"amount": {"type": "integer"}},
    "required": ["amount"],
}
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "note": {"type": "string", "maxLength": 20},
    },
    "required": ["approved"],
    "additionalProperties": False,
}
# Nothing listens here: webhook deliveries fail and are retried, the outbox rows stay.
CALLBACK_URL = "http://127.0.0.1:9/awaithumans-hook"
TIMEOUT_SECONDS = 3600


@dataclass
class Actor:
    name: str
    client: httpx.AsyncClient
    kind: str  # "admin" | "user"
    principal_id: str
    is_operator: bool
    email: str | None = None


@dataclass
class World:
    app: FastAPI
    ctx: ServerContext
    actors: dict[str, Actor]

    @property
    def admin(self) -> Actor:
        return self.actors["admin"]


PASSWORD = "correct horse battery staple"


async def add_user(
    app: FastAPI, admin: httpx.AsyncClient, name: str, *, operator: bool = False
) -> Actor:
    """A directory user, signed in through ``/api/auth/login`` on a client of their own."""
    email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
    made = await admin.post(
        "/api/admin/users",
        json={
            "email": email,
            "display_name": name.title(),
            "is_operator": operator,
            "password": PASSWORD,
        },
    )
    assert made.status_code == 201, made.text
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert client.cookies.get(SESSION_COOKIE)
    user_id = made.json()["id"]
    assert (await client.get("/api/auth/me")).json()["id"] == user_id
    return Actor(name, client, "user", user_id, operator, email)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    settings_ = make_settings(database_url, scheduler_max_sleep_seconds=0.2)
    async with running_app(settings_) as (app, admin_client):
        actors = {"admin": Actor("admin", admin_client, "admin", "admin", True)}
        # Two reviewers who see only their own and their assigned tasks, and one operator.
        for name, operator in (("alice", False), ("bob", False), ("olga", True)):
            actors[name] = await add_user(app, admin_client, name, operator=operator)
        try:
            yield World(app, app.state.ctx, actors)
        finally:
            for actor in actors.values():
                if actor.kind == "user":
                    await actor.client.aclose()


# --------------------------------------------------------------------------------------
# Random API call sequences against a model
# --------------------------------------------------------------------------------------

# What a create asks for: (assignee, with a callback_url). alice is named by email, bob
# and olga by user id.
VARIANTS: tuple[tuple[str | None, bool], ...] = tuple(
    (assignee, callback)
    for assignee in (None, "alice", "bob", "olga")
    for callback in (False, True)
)
SLOTS = 2  # idempotency keys per example


@dataclass(frozen=True)
class Create:
    actor: str
    slot: int
    variant: int


@dataclass(frozen=True)
class ClaimOp:
    actor: str
    slot: int


@dataclass(frozen=True)
class Complete:
    actor: str
    slot: int
    answer: dict[str, Any]
    valid: bool


@dataclass(frozen=True)
class Cancel:
    actor: str
    slot: int


@dataclass(frozen=True)
class Poll:
    actor: str
    slot: int


@dataclass(frozen=True)
class Expire:
    """The task's deadline passes (the row's timeout_at is moved into the past)."""

    slot: int


Op = Create | ClaimOp | Complete | Cancel | Poll | Expire

# Reviewers twice as often: most refusals (404, 403) are theirs.
actors_st = st.sampled_from(("admin", "olga", "alice", "alice", "bob", "bob"))
create_slots = st.integers(0, SLOTS - 1)
# Calls on an existing task mostly; now and then on an id no task has (slot SLOTS).
slots_st = st.sampled_from([*range(SLOTS), *range(SLOTS), SLOTS])
# No NULs (PostgreSQL text refuses them) and no lone surrogates (not encodable as UTF-8 JSON).
note_chars = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
valid_answers = st.fixed_dictionaries(
    {"approved": st.booleans()}, optional={"note": st.text(note_chars, max_size=20)}
)
invalid_answers: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"approved": st.sampled_from(["yes", 1, None, []])}),
    st.fixed_dictionaries({"approved": st.booleans(), "extra": st.integers(0, 9)}),
    st.fixed_dictionaries(
        {"approved": st.booleans(), "note": st.text(note_chars, min_size=21, max_size=25)}
    ),
)
creates = st.builds(Create, actors_st, create_slots, st.integers(0, len(VARIANTS) - 1))
claims = st.builds(ClaimOp, actors_st, slots_st)
answers = st.builds(Complete, actors_st, slots_st, valid_answers, st.just(True))
bad_answers = st.builds(Complete, actors_st, slots_st, invalid_answers, st.just(False))
polls = st.builds(Poll, actors_st, slots_st)
# Repeats weight the choice: claims, answers and polls are the common calls; cancels and
# deadlines end a task, so they come less often.
ops_st: st.SearchStrategy[Op] = st.one_of(
    creates,
    claims,
    claims,
    answers,
    answers,
    bad_answers,
    polls,
    polls,
    st.builds(Cancel, actors_st, slots_st),
    st.builds(Cancel, actors_st, slots_st),
    st.builds(Expire, create_slots),
)
# Every program starts by creating both tasks (by anyone, with any assignee and callback).
programs = st.tuples(
    st.builds(Create, actors_st, st.just(0), st.integers(0, len(VARIANTS) - 1)),
    st.builds(Create, actors_st, st.just(1), st.integers(0, len(VARIANTS) - 1)),
    st.lists(ops_st, min_size=3, max_size=16),
).map(lambda p: [p[0], p[1], *p[2]])

AuditKey = tuple[str, str | None, str, str | None, str]  # action, from, to, actor_id, channel


@dataclass
class TaskModel:
    id: str
    key: str
    variant: int
    owner: str
    assignee: str | None
    status: TaskStatus
    callback: bool
    response: dict[str, Any] | None = None
    audit: list[AuditKey] = field(default_factory=list)
    history: list[TaskStatus] = field(default_factory=list)
    view: dict[str, Any] = field(default_factory=dict)

    def move(self, to: TaskStatus, action: str, actor_id: str, channel: str = "api") -> None:
        assert can_move(self.status, to), f"the model itself moved {self.status} -> {to}"
        self.audit.append((action, self.status.value, to.value, actor_id, channel))
        self.status = to
        self.history.append(to)


@dataclass
class PendingPoll:
    actor: str
    task: TaskModel
    start: int  # index into task.history when the poll started
    job: asyncio.Task[httpx.Response]


def ghost_id() -> str:
    return "tsk_" + uuid.uuid4().hex[:24]


def create_body(key: str, variant: int, world: World) -> dict[str, Any]:
    assignee, callback = VARIANTS[variant]
    body: dict[str, Any] = {
        "task": "Approve the refund?",
        "payload": {"amount": 100 + variant},
        "payload_schema": PAYLOAD_SCHEMA,
        "response_schema": RESPONSE_SCHEMA,
        "timeout_seconds": TIMEOUT_SECONDS,
        "idempotency_key": key,
    }
    if assignee == "alice":
        body["assign_to"] = {"email": world.actors["alice"].email}
    elif assignee is not None:
        body["assign_to"] = {"user_id": world.actors[assignee].principal_id}
    if callback:
        body["callback_url"] = CALLBACK_URL
    return body


def label(text: str) -> None:
    """Count a path taken, for ``--hypothesis-show-statistics``."""
    if currently_in_test_context():
        event(text)
    # Otherwise the model runs on the app's loop thread while Hypothesis runs in another
    # (test_api_state_machine.py drives it from a worker thread): nowhere to record it.


def note(verb: str, resp: httpx.Response) -> None:
    """Label the outcome for ``--hypothesis-show-statistics``: which paths were taken."""
    code = "" if resp.is_success else " " + str(resp.json().get("error"))
    label(f"{verb}: {resp.status_code}{code}")


def assert_refused(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, (status, code, resp.status_code, resp.text)
    body = resp.json()
    assert body["error"] == code, (code, body)
    assert isinstance(body["message"], str)
    assert body["message"]


class Run:
    """One example: a fresh set of idempotency keys, the model, and the checks."""

    def __init__(self, world: World) -> None:
        self.world = world
        prefix = uuid.uuid4().hex
        self.keys = [f"prop-{prefix}-{i}" for i in range(SLOTS)]
        # The task the other calls on a slot act on: the first one made with its key.
        self.tasks: dict[int, TaskModel] = {}
        # Every task, by (creator, slot): an idempotency key names one task per credential.
        self.scoped: dict[tuple[str, int], TaskModel] = {}
        self.polls: list[PendingPoll] = []

    # -- the model's view of who may do what -------------------------------------------

    def actor(self, name: str) -> Actor:
        return self.world.actors[name]

    def user_id(self, name: str | None) -> str | None:
        return None if name is None else self.actor(name).principal_id

    def can_see(self, who: Actor, task: TaskModel) -> bool:
        return who.is_operator or task.owner == who.name or task.assignee == who.name

    # -- operations ----------------------------------------------------------------------

    async def apply(self, op: Op) -> None:
        changed: TaskModel | None = None
        expired: TaskModel | None = None
        if isinstance(op, Create):
            changed = await self.create(op)
        elif isinstance(op, ClaimOp):
            changed = await self.claim(op)
        elif isinstance(op, Complete):
            changed = await self.complete(op)
        elif isinstance(op, Cancel):
            changed = await self.cancel(op)
        elif isinstance(op, Poll):
            await self.poll(op)
        else:
            changed, expired = await self.expire(op)
        await self.check(changed, expired)

    async def create(self, op: Create) -> TaskModel | None:
        who = self.actor(op.actor)
        key = self.keys[op.slot]
        resp = await who.client.post("/api/tasks", json=create_body(key, op.variant, self.world))
        note("create", resp)
        # Keys are scoped to the credential: another actor's same key is another task.
        existing = self.scoped.get((who.name, op.slot))
        if existing is None:
            assert resp.status_code == 201, resp.text
            assert "idempotent-replayed" not in resp.headers
            assignee, callback = VARIANTS[op.variant]
            status = S.ASSIGNED if assignee else S.CREATED
            view = resp.json()
            task = TaskModel(
                id=view["id"],
                key=key,
                variant=op.variant,
                owner=who.name,
                assignee=assignee,
                status=status,
                callback=callback,
                audit=[("created", None, status.value, who.principal_id, "api")],
                history=[status],
            )
            assert view["status"] == status.value
            assert view["assigned_to_user_id"] == self.user_id(assignee)
            assert view["idempotency_key"] == key
            assert all(view["id"] != other.id for other in self.scoped.values())
            self.scoped[(who.name, op.slot)] = task
            self.tasks.setdefault(op.slot, task)
            return task
        if existing.variant == op.variant:
            assert resp.status_code == 201, resp.text
            assert resp.headers.get("idempotent-replayed") == "true"
            assert resp.json()["id"] == existing.id
            assert resp.json()["status"] == existing.status.value
        else:
            assert_refused(resp, 409, "IDEMPOTENCY_CONFLICT")
        return None

    async def claim(self, op: ClaimOp) -> TaskModel | None:
        who = self.actor(op.actor)
        task = self.tasks.get(op.slot)
        resp = await who.client.post(f"/api/tasks/{task.id if task else ghost_id()}/claim")
        note("claim", resp)
        if task is None or not self.can_see(who, task):
            assert_refused(resp, 404, "TASK_NOT_FOUND")
        elif task.status.is_terminal:
            assert_refused(resp, 409, "TASK_ALREADY_TERMINAL")
        elif task.status not in (S.CREATED, S.NOTIFIED, S.ASSIGNED):
            assert_refused(resp, 409, "TASK_ALREADY_CLAIMED")
        elif task.assignee not in (None, who.name) and not who.is_operator:
            assert_refused(resp, 403, "NOT_ASSIGNED_TO_YOU")
        else:
            assert resp.status_code == 200, resp.text
            task.move(S.IN_PROGRESS, "claimed", who.principal_id)
            if who.kind == "user":
                task.assignee = who.name
            assert resp.json()["status"] == S.IN_PROGRESS.value
            assert resp.json()["assigned_to_user_id"] == self.user_id(task.assignee)
            return task
        return None

    async def complete(self, op: Complete) -> TaskModel | None:
        who = self.actor(op.actor)
        task = self.tasks.get(op.slot)
        validator = jsonschema_rs.validator_for(RESPONSE_SCHEMA)
        assert validator.is_valid(op.answer) == op.valid, op.answer
        resp = await who.client.post(
            f"/api/tasks/{task.id if task else ghost_id()}/complete", json={"response": op.answer}
        )
        note("complete", resp)
        if task is None or not self.can_see(who, task):
            assert_refused(resp, 404, "TASK_NOT_FOUND")
        elif task.status not in ANSWERABLE:
            assert task.status.is_terminal, task.status
            assert_refused(resp, 409, "TASK_ALREADY_TERMINAL")
        # One order on every channel (services/answers.py): who may answer before what.
        elif not (who.is_operator or task.assignee == who.name):
            assert_refused(resp, 403, "NOT_ASSIGNED_TO_YOU")
        elif not op.valid:
            assert_refused(resp, 422, "SCHEMA_VALIDATION_FAILED")
        else:
            assert resp.status_code == 200, resp.text
            task.move(S.COMPLETED, "completed", who.principal_id)
            task.response = op.answer
            body = resp.json()
            assert body["status"] == S.COMPLETED.value
            assert body["response"] == op.answer
            assert body["completed_by_user_id"] == who.principal_id
            assert body["completed_via_channel"] == "api"
            return task
        return None

    async def cancel(self, op: Cancel, task: TaskModel | None = None) -> TaskModel | None:
        who = self.actor(op.actor)
        task = task or self.tasks.get(op.slot)
        resp = await who.client.post(
            f"/api/tasks/{task.id if task else ghost_id()}/cancel", json={"reason": "test"}
        )
        note("cancel", resp)
        if task is None or not self.can_see(who, task):
            assert_refused(resp, 404, "TASK_NOT_FOUND")
        elif task.status.is_terminal:
            assert_refused(resp, 409, "TASK_ALREADY_TERMINAL")
        elif not (who.is_operator or task.owner == who.name):
            assert_refused(resp, 403, "FORBIDDEN")
        else:
            assert resp.status_code == 200, resp.text
            assert resp.json()["status"] == S.CANCELLED.value
            task.move(S.CANCELLED, "cancelled", who.principal_id)
            return task
        return None

    async def poll(self, op: Poll) -> None:
        who = self.actor(op.actor)
        task = self.tasks.get(op.slot)
        url = f"/api/tasks/{task.id if task else ghost_id()}/poll"
        if task is None or not self.can_see(who, task):
            resp = await who.client.get(url, params={"timeout": 1})
            note("poll", resp)
            assert_refused(resp, 404, "TASK_NOT_FOUND")
            return
        if task.status.is_terminal:
            # A finished task answers at once, whatever the timeout.
            started = time.monotonic()
            resp = await who.client.get(url, params={"timeout": 30})
            note("poll (finished task)", resp)
            assert time.monotonic() - started < 10
            self.check_poll(resp, task, len(task.history) - 1)
            return
        # An open task's poll waits for the next change: let it wait in the background, and
        # check what it returns once something happened (at the latest, the final cleanup).
        hub = self.world.ctx.hub
        waiting = hub.waiting
        job = asyncio.create_task(who.client.get(url, params={"timeout": 30}))
        self.polls.append(PendingPoll(who.name, task, len(task.history) - 1, job))
        await wait_for(lambda: hub.waiting == waiting + 1 or job.done(), "poll registered")
        assert not job.done(), job.result().text

    def check_poll(self, resp: httpx.Response, task: TaskModel, start: int) -> None:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        status = TaskStatus(body["status"])
        assert status in task.history[start:], (status, task.history, start)
        if status is S.COMPLETED:
            assert body["response"] == task.response
        else:
            assert body["response"] is None

    async def expire(self, op: Expire) -> tuple[TaskModel | None, TaskModel | None]:
        task = self.tasks.get(op.slot)
        if task is None:
            return None, None
        ctx = self.world.ctx
        past = utcnow() - timedelta(seconds=1)
        async with ctx.engine.begin() as conn:
            await conn.execute(update(TaskRow).where(TaskRow.id == task.id).values(timeout_at=past))
        if task.status.is_terminal:
            # Nothing for the scheduler to do; the checks after the step confirm that.
            label("expire: finished task, no change")
            return None, task
        # No kick: the scheduler's next pass (at most 0.2 s away) must find the task itself.
        async with ctx.engine.connect() as conn:
            await wait_for_async(
                lambda: task_status(conn, task.id), S.TIMED_OUT.value, "scheduler timeout"
            )
        label(f"expire: {task.status.value} -> timed_out")
        task.move(S.TIMED_OUT, "timed_out", "scheduler", Channel.SCHEDULER.value)
        return task, task

    async def finish(self) -> None:
        """Close every open task (which wakes every pending poll), then check the polls."""
        for (_creator, slot), task in sorted(self.scoped.items()):
            if not task.status.is_terminal:
                await self.check(await self.cancel(Cancel("admin", slot), task), None)
        for poll in self.polls:
            resp = await asyncio.wait_for(poll.job, 10)
            note("poll (woken)", resp)
            self.check_poll(resp, poll.task, poll.start)

    async def abandon(self) -> None:
        """After a failure: stop the polls still waiting, so nothing outlives the example."""
        for poll in self.polls:
            poll.job.cancel()
        await asyncio.gather(*(p.job for p in self.polls), return_exceptions=True)

    # -- invariants ------------------------------------------------------------------------

    async def check(self, changed: TaskModel | None, expired: TaskModel | None) -> None:
        admin = self.world.admin.client
        validator = jsonschema_rs.validator_for(RESPONSE_SCHEMA)
        for task in self.scoped.values():
            resp = await admin.get(f"/api/tasks/{task.id}")
            assert resp.status_code == 200, resp.text
            view = resp.json()
            assert view["status"] == task.status.value, (view["status"], task.status)
            assert view["assigned_to_user_id"] == self.user_id(task.assignee)
            if task.status is S.COMPLETED:
                assert view["response"] == task.response
                assert validator.is_valid(view["response"])
                assert jsonschema_rs.validator_for(view["response_schema"]).is_valid(
                    view["response"]
                )
            else:
                assert view["response"] is None
            if task.view and task is not changed:
                # Refused calls, replays, polls and other tasks' moves change nothing; in
                # particular a finished task never changes again. (The test itself moves
                # timeout_at when it expires a task.)
                before, after = dict(task.view), dict(view)
                if task is expired:
                    before.pop("timeout_at")
                    after.pop("timeout_at")
                assert after == before
            task.view = view

            trail = (await admin.get(f"/api/tasks/{task.id}/audit")).json()
            assert trail, "a task without an audit trail"
            assert trail[0]["from_status"] is None
            assert trail[0]["to_status"] in (S.CREATED.value, S.ASSIGNED.value)
            for prev, row in itertools.pairwise(trail):
                assert row["from_status"] == prev["to_status"], trail
            assert trail[-1]["to_status"] == task.status.value
            got = [
                (r["action"], r["from_status"], r["to_status"], r["actor_id"], r["channel"])
                for r in trail
            ]
            assert got == task.audit

            async with self.world.ctx.engine.connect() as conn:
                kinds = dict(
                    (
                        await conn.execute(
                            select(OutboxRow.kind, func.count())
                            .where(OutboxRow.task_id == task.id)
                            .group_by(OutboxRow.kind)
                        )
                    ).all()
                )
            webhooks = 1 if task.callback and task.status.is_terminal else 0
            assert kinds == ({"webhook": webhooks} if webhooks else {}), kinds


async def task_status(conn: Any, task_id: str) -> str | None:
    found = await conn.scalar(select(TaskRow.status).where(TaskRow.id == task_id))
    await conn.rollback()  # the next read must see what was committed since
    return found if found is None else str(found)


async def wait_for(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.005)


async def wait_for_async(read: Any, expected: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := await read()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {got!r} != {expected!r}")
        await asyncio.sleep(0.01)


def variant(assignee: str | None, callback: bool = False) -> int:
    return VARIANTS.index((assignee, callback))


# Programs the random search reaches only now and then, run on every test run. The comment
# on each step is what the model expects.
ACCESS_RULES: list[Op] = [
    Create("admin", 0, variant("alice", callback=True)),  # 201 assigned (alice, by email)
    Create("alice", 1, variant("bob")),  # 201 assigned to bob, owned by alice
    Cancel("alice", 0),  # 403 FORBIDDEN: the assignee is not the owner
    ClaimOp("alice", 1),  # 403 NOT_ASSIGNED_TO_YOU: the owner is not the assignee
    Complete("alice", 1, {"approved": True}, valid=True),  # 403 NOT_ASSIGNED_TO_YOU
    Poll("bob", 1),  # waits
    ClaimOp("bob", 1),  # 200, wakes bob's poll
    ClaimOp("bob", 1),  # 409 TASK_ALREADY_CLAIMED
    ClaimOp("olga", 1),  # 409 TASK_ALREADY_CLAIMED, operator or not
    Complete("bob", 1, {"approved": "yes"}, valid=False),  # 422 SCHEMA_VALIDATION_FAILED
    Complete("bob", 1, {"approved": False, "note": "no"}, valid=True),  # 200
    Cancel("bob", 1),  # 409 TASK_ALREADY_TERMINAL
    Create("bob", 1, variant("bob")),  # 201: alice's key is bob's own task under his
    Create("bob", 1, variant("bob")),  # 201 replay of bob's
    Create("olga", 1, variant("bob")),  # 201: an operator's own task, too
    Create("bob", 1, variant("alice")),  # 409 IDEMPOTENCY_CONFLICT: other content
    Create("admin", 0, variant("alice")),  # 409 IDEMPOTENCY_CONFLICT: other content
    Poll("alice", 0),  # waits
    Expire(0),  # assigned -> timed_out, wakes alice's poll
    Expire(1),  # completed: nothing happens
    Poll("alice", 0),  # 200 at once: timed_out
    Poll("bob", 0),  # 404: not bob's
]
CLAIMS_MOVE_ASSIGNMENT: list[Op] = [
    Create("alice", 0, variant(None)),  # 201 created, owned by alice
    Create("admin", 1, variant("alice", callback=True)),  # 201 assigned to alice
    Complete("alice", 0, {"approved": True}, valid=True),  # 403: the owner is not assigned
    ClaimOp("alice", 0),  # 200: unassigned, so alice takes it
    Complete("alice", 0, {"approved": True}, valid=True),  # 200
    ClaimOp("olga", 1),  # 200: an operator takes it over from alice
    Poll("alice", 1),  # 404: no longer alice's
    ClaimOp("alice", 1),  # 404 likewise
    Expire(1),  # in_progress -> timed_out
    ClaimOp("olga", 1),  # 409 TASK_ALREADY_TERMINAL
]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=programs)
@example(program=ACCESS_RULES)
@example(program=CLAIMS_MOVE_ASSIGNMENT)
async def test_random_api_sequences_follow_the_model(world: World, program: list[Op]) -> None:
    run = Run(world)
    try:
        for op in program:
            await run.apply(op)
        await run.finish()
    except BaseException:
        await run.abandon()
        raise


# --------------------------------------------------------------------------------------
# The compare-and-set under a real race
# --------------------------------------------------------------------------------------


class _StaleReadConnection:
    """Wraps a connection so that, right before ``transition``'s compare-and-set, another
    writer tries to change the same task: the read-then-write race between replicas."""

    def __init__(self, conn: Any, interfere: Any) -> None:
        self._conn = conn
        self._interfere = interfere
        self.interfered = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.interfered and getattr(statement, "is_dml", False) and statement.is_update:
            self.interfered = True
            await self._interfere()
        return await self._conn.execute(statement, *args, **kwargs)


async def _wait_for_lock_wait(
    engine: Any, other: asyncio.Task[Any], deadline_s: float = 10.0
) -> None:
    """Return once some PostgreSQL backend waits on a row lock (the ``other`` replica)."""
    end = time.monotonic() + deadline_s
    async with engine.connect() as probe:
        while True:
            waiting = await probe.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            # pg_stat_activity is read once per transaction: end it to see the next moment.
            await probe.rollback()
            if waiting:
                return
            if other.done():
                raise AssertionError(f"the other replica did not wait: {other.result()}")
            if time.monotonic() > end:
                seen = await probe.execute(
                    text(
                        "SELECT state, wait_event_type, wait_event, left(query, 80)"
                        " FROM pg_stat_activity WHERE datname = current_database()"
                    )
                )
                raise AssertionError(f"nobody waits on the row lock: {list(seen)}")
            await asyncio.sleep(0.01)


CLAIMABLE = frozenset({S.CREATED, S.NOTIFIED, S.ASSIGNED})


@pytest.mark.parametrize(
    ("other_moves_to", "we_move_to", "we_allow", "then"),
    [
        # The other replica ended the task: our answer is refused, naming the end
        # (the API's 409 TASK_ALREADY_TERMINAL).
        (S.CANCELLED, S.COMPLETED, ANSWERABLE, S.CANCELLED),
        # The other replica claimed it: an operator's answer is still allowed from
        # in_progress, so it lands, as it would had the two calls come one after the other.
        (S.IN_PROGRESS, S.COMPLETED, ANSWERABLE, S.COMPLETED),
        # The other replica recorded a notification: a claim still may follow, and must,
        # rather than be told TASK_ALREADY_CLAIMED about a task nobody claimed.
        (S.NOTIFIED, S.IN_PROGRESS, CLAIMABLE, S.IN_PROGRESS),
    ],
    ids=["cancel-beats-answer", "claim-then-answer", "notified-then-claim"],
)
async def test_lost_compare_and_set_decides_on_the_current_row(
    database_url: str,
    other_moves_to: TaskStatus,
    we_move_to: TaskStatus,
    we_allow: frozenset[TaskStatus],
    then: TaskStatus,
) -> None:
    """Another replica moves the task between ``transition``'s read and its write.

    The outcome must be one that some serial order of the two moves gives. A refusal that
    names a status the task is not in (or refuses a move the current status allows)
    becomes a wrong 409 at the API: INVALID_TRANSITION "Cannot answer a task that is
    in_progress", or TASK_ALREADY_CLAIMED for a task nobody claimed.

    * SQLite: the other write commits in between; our compare-and-set misses, and we decide
      again on the row as it is now: ours lands after theirs (``then``), or is refused
      naming their status.
    * PostgreSQL: our read locked the row, so the other replica waits (seen in
      ``pg_stat_activity``) until we commit, then decides on our result: ours lands from
      ``created`` and theirs is refused with our status.
    """
    from awaithumans.server.principals import ADMIN

    async with running_app(make_settings(database_url)) as (app, admin):
        created = await admin.post(
            "/api/tasks",
            json={
                "task": "Race",
                "payload": {"amount": 1},
                "payload_schema": PAYLOAD_SCHEMA,
                "response_schema": RESPONSE_SCHEMA,
                "timeout_seconds": TIMEOUT_SECONDS,
                "idempotency_key": f"cas-{uuid.uuid4().hex}",
            },
        )
        task_id = created.json()["id"]
        engine = app.state.ctx.engine
        locking = engine.dialect.name == "postgresql"

        async def other_replica_moves() -> Moved | Refused:
            async with engine.begin() as other:
                return await transition(
                    other,
                    task_id,
                    to=other_moves_to,
                    action="other",
                    actor=ADMIN,
                    channel=Channel.API,
                )

        theirs: asyncio.Task[Moved | Refused] | None = None

        async def interfere() -> None:
            nonlocal theirs
            theirs = asyncio.create_task(other_replica_moves())
            if locking:
                await _wait_for_lock_wait(engine, theirs)
            else:
                await theirs

        async with engine.begin() as conn:
            racing = _StaleReadConnection(conn, interfere)
            outcome = await transition(
                racing,  # type: ignore[arg-type]
                task_id,
                to=we_move_to,
                action="ours",
                actor=ADMIN,
                channel=Channel.API,
                allowed_from=we_allow,
            )
        assert racing.interfered
        assert theirs is not None
        their_outcome = await asyncio.wait_for(theirs, 10)
        trail = (await admin.get(f"/api/tasks/{task_id}/audit")).json()
        steps = [(r["from_status"], r["to_status"]) for r in trail]
        final = (await admin.get(f"/api/tasks/{task_id}")).json()["status"]
        if locking:
            assert isinstance(outcome, Moved), outcome
            assert (outcome.from_status, outcome.to_status) == (S.CREATED, we_move_to)
            assert isinstance(their_outcome, Refused), their_outcome
            assert their_outcome.current is we_move_to, their_outcome
            assert steps == [(None, "created"), ("created", we_move_to.value)]
            assert final == we_move_to.value
            return
        assert isinstance(their_outcome, Moved), their_outcome
        expected_trail = [(None, "created"), ("created", other_moves_to.value)]
        if then is we_move_to:
            assert isinstance(outcome, Moved), outcome
            assert (outcome.from_status, outcome.to_status) == (other_moves_to, we_move_to)
            expected_trail.append((other_moves_to.value, we_move_to.value))
        else:
            assert isinstance(outcome, Refused), outcome
            assert outcome.current is then, outcome
        assert steps == expected_trail
        assert final == then.value
