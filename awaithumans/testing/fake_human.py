"""A fake human for testing agents: a real server in the test process, answering by rule.

Tests of an agent that calls ``await_human`` should not need a server running elsewhere, nor
someone clicking, nor a minute's wait. :class:`FakeHuman` starts the awaithumans server in
the test process (its own thread and event loop, SQLite in a temporary directory, a free
port on 127.0.0.1), points the SDK at it (``AWAITHUMANS_URL`` / ``AWAITHUMANS_API_KEY``),
and answers each task the moment it is created, by the first rule that matches::

    def test_refunds(fake_human):
        fake_human.answer(title_contains="refund", with_=Decision(approved=True))
        fake_human.reject(title_contains="delete")      # approved=False
        fake_human.never(title_contains="escalate")     # left open
        run_my_agent()
        assert fake_human.asked[0].payload == {"order_id": "A-1", "amount": 40}

The answers go through the server's real answer path (schema check, audit row, receipt,
webhook, the direct delivery into Temporal or Prefect when configured), so what the agent
gets back is exactly what a person's answer would give it. A task no rule matches is
cancelled at once (the agent gets ``TaskCancelledError`` naming the reason, rather than
waiting out its timeout) and the test fails at teardown, naming the task.

It answers as an operator, except where the task says only its approvers may answer
(``approvers=[...]`` with ``operators_may_answer=False``): then it acts as the people listed,
each a directory user of this server (an email's user, created if absent; for ``role:x`` or
``pool:x`` a fake user holding it), as many distinct ones as ``approvals_required`` asks.
A rule's ``as_=`` says whom to act as; someone the task does not allow is refused by the
server, and the test fails naming the task. ``Asked.answered_by`` says whom it acted as.

The ``fake_human`` fixture (``awaithumans.testing.pytest_plugin``, registered through the
``pytest11`` entry point) gives each test its own, with the environment set; outside pytest,
``with FakeHuman() as human:`` does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import BaseModel

from awaithumans.testing.server import free_port

if TYPE_CHECKING:
    from awaithumans.server.context import ServerContext

Action = Literal["answer", "reject", "never", "time_out"]
#: An answer: a response model instance, its JSON, or a function of the task that makes one.
Answer = BaseModel | Mapping[str, Any] | Callable[["Asked"], BaseModel | Mapping[str, Any]]

#: The field ``reject()`` sets to False, and the ones it puts its notes in, if the form has them.
APPROVED_FIELD = "approved"
_NOTE_FIELDS = ("notes", "note", "reason", "comment", "comments")


@dataclass(frozen=True, slots=True)
class Asked:
    """A task the fake human saw, as the person would see it.

    Attributes:
        outcome: ``"answered"``, ``"rejected"``, ``"left"`` (a ``never`` rule),
            ``"timed_out"`` (a ``time_out`` rule), ``"unmatched"`` or ``"refused"`` (the
            server refused the rule's answer: ``error`` says why); both of the last two
            cancel the task.
        response: The answer given, if any.
        rule: The rule that matched, as written.
        answered_by: Whom the fake human acted as, one per answer or vote the server
            took: an email for a directory user, else the fake operator's label.
    """

    task_id: str
    task: str
    payload: dict[str, Any] | None
    response_schema: dict[str, Any]
    task_metadata: dict[str, Any] | None
    notify: list[str] | None
    assign_to: dict[str, Any] | None
    outcome: str = "pending"
    response: dict[str, Any] | None = None
    rule: str | None = None
    error: str | None = None
    answered_by: tuple[str, ...] = ()


@dataclass(slots=True)
class Rule:
    """One rule: which tasks (all conditions given must hold) and what to do with them."""

    action: Action
    title_contains: str | None = None
    matches: re.Pattern[str] | None = None
    where: Callable[[Asked], bool] | None = None
    with_: Answer | None = None
    notes: str | None = None
    times: int | None = None
    as_: tuple[str, ...] = ()
    used: int = field(default=0)

    def applies(self, asked: Asked) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        if (
            self.title_contains is not None
            and self.title_contains.lower() not in asked.task.lower()
        ):
            return False
        if self.matches is not None and not self.matches.search(asked.task):
            return False
        return self.where is None or self.where(asked)

    def __str__(self) -> str:
        conditions = [
            f"title_contains={self.title_contains!r}" if self.title_contains is not None else "",
            f"matches={self.matches.pattern!r}" if self.matches is not None else "",
            "where=..." if self.where is not None else "",
            f"as_={list(self.as_)!r}" if self.as_ else "",
        ]
        return f"{self.action}({', '.join(c for c in conditions if c)})"


class FakeHumanError(AssertionError):
    """A task matched no rule, or the server refused a rule's answer (raised at the end)."""


class FakeHuman:
    """An in-process awaithumans server and a person who answers it by rule.

    Args:
        temporal_address: Temporal's frontend (``host:port``): the server then signals
            workflows waiting in the Temporal adapter itself.
        prefect_api_url: Prefect's API URL: the server resumes paused Prefect flow runs.
        strict: Cancel tasks no rule matches, and fail at :meth:`close` naming them.
        settings: More server settings (``Settings`` field names), e.g. a verifier's key.
    """

    def __init__(
        self,
        *,
        temporal_address: str | None = None,
        prefect_api_url: str | None = None,
        strict: bool = True,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="awaithumans-fake-human-")
        self.port = free_port()
        self.admin_token = "fake-human-" + secrets.token_hex(16)
        self.strict = strict
        self._settings: dict[str, Any] = {
            "database_url": f"sqlite:///{Path(self._tmp.name) / 'tasks.db'}",
            "payload_key": secrets.token_hex(32),
            "admin_api_token": self.admin_token,
            "public_url": self.url,
            "allow_private_callbacks": "loopback",
            **({"temporal_address": temporal_address} if temporal_address else {}),
            **({"prefect_api_url": prefect_api_url} if prefect_api_url else {}),
            **(settings or {}),
        }
        self._rules: list[Rule] = []
        self._asked: dict[str, Asked] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._rules_changed: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._closed = False

    # -- where agents find it -----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_key(self) -> str:
        return self.admin_token

    def env(self) -> dict[str, str]:
        """The environment that points ``await_human`` here (set by the fixture)."""
        return {
            "AWAITHUMANS_URL": self.url,
            "AWAITHUMANS_API_KEY": self.admin_token,
            "AWAITHUMANS_QUIET": "1",
        }

    # -- rules ----------------------------------------------------------------------------

    def answer(
        self,
        *,
        with_: Answer,
        title_contains: str | None = None,
        matches: str | None = None,
        where: Callable[[Asked], bool] | None = None,
        times: int | None = None,
        as_: str | Sequence[str] | None = None,
    ) -> Rule:
        """Answer matching tasks with ``with_`` (an instance, its JSON, or a function of
        the :class:`Asked` task returning one). ``times`` limits how many it answers.

        ``as_`` names whom to act as: an email (that directory user, created if absent),
        ``"role:x"`` or ``"pool:x"`` (a fake user holding it), or a list of them for the
        votes of a task needing several approvals (more votes, if needed, come from its
        approvers). The server judges them as it would the real people: one it does not
        allow to answer fails the test, naming the task."""
        rule = Rule("answer", title_contains, _regex(matches), where, with_, None, times)
        rule.as_ = _people_named(as_)
        return self._add(rule)

    def reject(
        self,
        *,
        title_contains: str | None = None,
        matches: str | None = None,
        where: Callable[[Asked], bool] | None = None,
        notes: str | None = None,
        times: int | None = None,
        as_: str | Sequence[str] | None = None,
    ) -> Rule:
        """Answer matching tasks with ``approved=False`` (and ``notes`` in the form's notes,
        reason or comment field, if it has one). The response schema needs a boolean
        ``approved`` field; for other forms use :meth:`answer`. ``as_`` as in :meth:`answer`."""
        rule = Rule("reject", title_contains, _regex(matches), where, None, notes, times)
        rule.as_ = _people_named(as_)
        return self._add(rule)

    def never(
        self,
        *,
        title_contains: str | None = None,
        matches: str | None = None,
        where: Callable[[Asked], bool] | None = None,
    ) -> Rule:
        """Leave matching tasks unanswered (the agent waits; cancel or answer them yourself)."""
        return self._add(Rule("never", title_contains, _regex(matches), where))

    def time_out(
        self,
        *,
        title_contains: str | None = None,
        matches: str | None = None,
        where: Callable[[Asked], bool] | None = None,
    ) -> Rule:
        """Let matching tasks time out now: the server's real timeout, with the task's
        ``on_timeout`` default applied if it has one (the agent gets it, or
        ``TaskTimeoutError``)."""
        return self._add(Rule("time_out", title_contains, _regex(matches), where))

    def _add(self, rule: Rule) -> Rule:
        if rule.action == "answer" and rule.with_ is None:
            raise ValueError("answer() needs with_=: the answer to give.")
        with self._lock:
            self._rules.append(rule)
        # Tasks that came before the rule (an agent started first) are looked at again.
        loop, event = self._loop, self._rules_changed
        if loop is not None and event is not None:
            loop.call_soon_threadsafe(event.set)
        return rule

    # -- what it saw ----------------------------------------------------------------------

    @property
    def asked(self) -> list[Asked]:
        """Every task it saw, oldest first, with what it did."""
        with self._lock:
            return list(self._asked.values())

    def wait_for_tasks(self, count: int, timeout: float = 10.0) -> list[Asked]:
        """Block until it has seen ``count`` tasks; for agents running in the background."""
        deadline = time.monotonic() + timeout
        while len(self.asked) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the fake human saw {len(self.asked)} of {count} tasks")
            time.sleep(0.01)
        return self.asked

    # -- running --------------------------------------------------------------------------

    def start(self) -> FakeHuman:
        import uvicorn

        from awaithumans.server.app import create_app
        from awaithumans.server.settings import Settings

        app = create_app(Settings(**self._settings))
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(server, app.state.ctx, started))
            except BaseException as exc:  # reported to the test thread below
                self._failure = exc
                started.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="awaithumans-fake-human", daemon=True)
        self._thread.start()
        if not started.wait(30) or self._failure is not None:
            self.close()
            raise RuntimeError(f"the fake human's server did not start: {self._failure!r}")
        return self

    async def _serve(self, server: Any, ctx: ServerContext, started: threading.Event) -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving  # raises what stopped it
                return
            await asyncio.sleep(0.01)
        self._rules_changed = asyncio.Event()
        responder = asyncio.create_task(self._respond(ctx))
        started.set()
        try:
            await serving
        finally:
            responder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await responder

    def close(self) -> None:
        """Stop the server. Raises :class:`FakeHumanError` if a task matched no rule or a
        rule's answer was refused (``strict``). Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        self._tmp.cleanup()
        problems = [a for a in self.asked if a.outcome in ("unmatched", "refused")]
        if self.strict and problems:
            raise FakeHumanError(
                "The fake human could not answer "
                + "; ".join(f"{a.task!r} ({a.task_id}): {a.error}" for a in problems)
            )

    def __enter__(self) -> FakeHuman:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The test already failed: its own error says more than "a task was not answered".
        with contextlib.suppress(FakeHumanError):
            self.close()

    # -- the person -----------------------------------------------------------------------

    async def _respond(self, ctx: ServerContext) -> None:
        """Look at new tasks whenever anything changes on the server (or a rule is added)."""
        assert self._rules_changed is not None
        while True:
            seen = ctx.hub.sequence
            self._rules_changed.clear()
            await self._look(ctx)
            changed = asyncio.ensure_future(ctx.hub.wait_any(seen, 5.0))
            added = asyncio.ensure_future(self._rules_changed.wait())
            try:
                await asyncio.wait({changed, added}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in (changed, added):
                    waiting.cancel()

    async def _look(self, ctx: ServerContext) -> None:
        from sqlalchemy import select

        from awaithumans.server.db.models import TaskRow
        from awaithumans.server.db.records import TaskRecord
        from awaithumans.server.services.lifecycle import ANSWERABLE

        with self._lock:
            decided = {k for k, a in self._asked.items() if a.outcome != "pending"}
        async with ctx.reader.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(TaskRow)
                        .where(TaskRow.status.in_([s.value for s in ANSWERABLE]))
                        .order_by(TaskRow.created_at)
                    )
                )
                .mappings()
                .all()
            )
        for row in rows:
            if row["id"] not in decided:
                await self._decide(ctx, TaskRecord.from_row(row))

    async def _decide(self, ctx: ServerContext, task: Any) -> None:
        from awaithumans.server.services.views import view_of

        view = view_of(task, ctx.sealer, ctx.settings.base_url())
        asked = Asked(
            task_id=view.id,
            task=view.task,
            payload=view.payload,
            response_schema=view.response_schema,
            task_metadata=view.task_metadata,
            notify=view.notify,
            assign_to=view.assign_to,
        )
        with self._lock:
            rule = next((r for r in self._rules if r.applies(asked)), None)
            if rule is not None:
                rule.used += 1
        if rule is None:
            if not self.strict:
                self._record(asked)
                return
            error = "no rule matches it; add e.g. fake_human.answer(title_contains=..., with_=...)"
            self._record(asked, outcome="unmatched", error=error)
            await self._cancel(ctx, asked.task_id, f"fake_human: {error}")
            return
        if rule.action == "never":
            self._record(asked, outcome="left", rule=str(rule))
            return
        if rule.action == "time_out":
            self._record(asked, outcome="timed_out", rule=str(rule))
            await self._expire(ctx, asked.task_id)
            return
        try:
            response = self._response(rule, asked)
        except (ValueError, TypeError) as exc:
            self._record(asked, outcome="refused", rule=str(rule), error=str(exc))
            await self._cancel(ctx, asked.task_id, f"fake_human: {exc}")
            return
        await self._give(ctx, task, asked, rule, response)

    def _response(self, rule: Rule, asked: Asked) -> dict[str, Any]:
        if rule.action == "reject":
            fields = asked.response_schema.get("properties") or {}
            if (fields.get(APPROVED_FIELD) or {}).get("type") != "boolean":
                raise ValueError(
                    "reject() needs a boolean 'approved' field in the response schema; "
                    "use answer(with_=...) for this form"
                )
            response: dict[str, Any] = {APPROVED_FIELD: False}
            note_field = next((f for f in _NOTE_FIELDS if f in fields), None)
            if rule.notes is not None and note_field is not None:
                response[note_field] = rule.notes
            return response
        made = rule.with_(asked) if callable(rule.with_) else rule.with_
        if isinstance(made, BaseModel):
            return made.model_dump(mode="json")
        if isinstance(made, Mapping):
            return dict(made)
        raise TypeError(f"an answer must be a model instance or a dict, not {type(made).__name__}")

    async def _give(
        self, ctx: ServerContext, task: Any, asked: Asked, rule: Rule, response: dict[str, Any]
    ) -> None:
        from awaithumans.server.services.answers import Done, Invalid, answer
        from awaithumans.server.services.lifecycle import Channel

        # A task that needs several approvals gets them from as many distinct fake people,
        # each vote through the same path; the first that ends the task ends the loop.
        given: list[str] = []
        outcome: Any = None
        who: Any = None
        try:
            async with contextlib.aclosing(self._people(ctx, task, rule)) as people:
                async for who in people:
                    outcome = await answer(ctx, asked.task_id, who, Channel.API, response)
                    if not isinstance(outcome, Done):
                        break
                    given.append(_named(who))
                    if not _waits_for_votes(outcome.task):
                        break
        except _NoSuchPerson as exc:
            error = str(exc)
        else:
            if isinstance(outcome, Done):
                done = "rejected" if rule.action == "reject" else "answered"
                self._record(
                    asked, outcome=done, rule=str(rule), response=response, answered_by=tuple(given)
                )
                return
            if isinstance(outcome, Invalid):
                why = "; ".join(
                    f"{'.'.join(map(str, p.get('loc', ())))}: {p.get('msg')}"
                    for p in outcome.problems
                )
                error = f"the answer does not fit the response schema ({why})"
            else:
                error = await self._refusal(ctx, task, who, outcome)
        self._record(
            asked,
            outcome="refused",
            rule=str(rule),
            error=error,
            response=response,
            answered_by=tuple(given),
        )
        await self._cancel(ctx, asked.task_id, f"fake_human: {error}")

    async def _refusal(self, ctx: ServerContext, task: Any, who: Any, refusal: Any) -> str:
        """The server's refusal in words. It hides a task from a person who may not see it
        (TASK_NOT_FOUND); the server's rule on answering then says why."""
        from awaithumans.core._codes import ErrorCode
        from awaithumans.server.services.answers import answer_refusal_of

        error = f"the server refused the answer of {_named(who)}: {refusal.code}: {refusal.message}"
        if refusal.code == ErrorCode.TASK_NOT_FOUND and who.kind == "user":
            why = await answer_refusal_of(ctx, who, task)
            if why is not None:
                error = (
                    f"the server refused the answer of {_named(who)}: {why.code}: {why.message}"
                    f" (the task is hidden from them: {refusal.code})"
                )
        return error

    async def _people(self, ctx: ServerContext, task: Any, rule: Rule) -> AsyncGenerator[Any, None]:
        """Whom to answer as, in turn (one per vote): the rule's ``as_``, then, where only
        approvers may answer, the people they name, else distinct fake operators."""
        from awaithumans.server.services.policy import policy_of

        used: set[str] = set()
        for at, name in enumerate(rule.as_):
            # as_=["role:finance", "role:finance"]: two distinct members of the role.
            who = await self._directory_person(ctx, name, rule.as_[:at].count(name) + 1)
            used.add(who.id)
            yield who
        policy = policy_of(task)
        if not (policy.restricts_answerers and not policy.operators_may_answer):
            for number in range(len(used) + 1, _MAX_VOTERS + 1):
                yield _person(number)
            return
        approvers = policy.approvers
        names = [*sorted(approvers.emails)]
        groups = [f"role:{r}" for r in sorted(approvers.roles)]
        groups += [f"pool:{p}" for p in sorted(approvers.pools)]
        for name in names:
            who = await self._directory_person(ctx, name, 1)
            if who.id not in used:
                used.add(who.id)
                yield who
        # Roles and pools hold as many people as the votes need: fake member 1, 2, ...
        for number in range(1, _MAX_VOTERS + 1 if groups else 1):
            for name in groups:
                who = await self._directory_person(ctx, name, number)
                if who.id not in used:
                    used.add(who.id)
                    yield who

    async def _directory_person(self, ctx: ServerContext, name: str, number: int) -> Any:
        """The directory user ``name`` stands for, added through the server's own directory
        write if absent: the user with that email, or fake member ``number`` of a role or pool.
        """
        from awaithumans.server.errors import ApiError
        from awaithumans.server.services.directory import SaveUser, as_principal, user_by_email
        from awaithumans.server.services.memberships import GroupKind, clean_names

        kind, _, group = name.partition(":")
        if kind in ("role", "pool") and group:
            gkind: GroupKind = "role" if kind == "role" else "pool"
            email = f"{group}.{number}@{kind}.fake-human.invalid"
            display = f"fake {kind} {group} member {number}"
            try:
                groups = {gkind: clean_names([group], gkind)}
            except ApiError as exc:  # the server's own word on the name
                raise _NoSuchPerson(f"as_={name!r}: {exc.message}") from None
        elif "@" in name:
            email, display, groups = name.strip().lower(), f"fake human as {name}", {}
        else:
            raise _NoSuchPerson(f"as_={name!r} is neither an email nor 'role:x' / 'pool:x'")
        found = await user_by_email(ctx.engine, email)
        if found is None:
            values = {
                "email": email,
                "display_name": display,
                "is_operator": False,
                "is_active": True,
                "slack_user_id": None,
                "password_hash": None,
            }
            refused = await ctx.writer.submit(
                SaveUser("usr_" + secrets.token_hex(12), values, create=True, groups=groups)
            )
            if refused is not None:
                raise _NoSuchPerson(f"could not add {email} to the directory: {refused}")
            found = await user_by_email(ctx.engine, email)
        assert found is not None
        user, active = found
        if not active:
            raise _NoSuchPerson(f"{email} is a deactivated directory user")
        return as_principal(user)

    async def _cancel(self, ctx: ServerContext, task_id: str, reason: str) -> None:
        from awaithumans.server.services.answers import cancel
        from awaithumans.server.services.lifecycle import Channel

        await cancel(ctx, task_id, _person(), Channel.API, reason[:500])

    async def _expire(self, ctx: ServerContext, task_id: str) -> None:
        """Move the deadline to now and wake the scheduler: the server times it out."""
        from sqlalchemy import update

        from awaithumans.server.db.models import TaskRow
        from awaithumans.server.db.types import utcnow

        now = utcnow()
        async with ctx.engine.begin() as conn:
            await conn.execute(update(TaskRow).where(TaskRow.id == task_id).values(timeout_at=now))
        ctx.wake.deadline(now)

    def _record(self, asked: Asked, **changes: Any) -> None:
        from dataclasses import replace

        with self._lock:
            self._asked[asked.task_id] = replace(asked, **changes)

    # -- LangGraph ------------------------------------------------------------------------

    async def settle(self, graph: Any, config: Any, *, timeout: float = 30.0) -> Any:
        """Resume a LangGraph thread until it waits on no task the fake human decided.

        A node that calls the LangGraph adapter's ``await_human`` interrupts the graph; in
        production the relay resumes it when the server's webhook arrives. Here this does
        it: each pending awaithumans interrupt is resumed with its task's outcome (as the
        relay would), again while new ones appear. Returns the thread's last state.
        """
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, headers=self._auth()) as http:
            while True:
                state = await graph.aget_state(config)
                resume = await self._resume_map(http, state, deadline)
                if not resume:
                    return state
                from langgraph.types import Command

                await graph.ainvoke(Command(resume=resume), config)

    async def _resume_map(
        self, http: httpx.AsyncClient, state: Any, deadline: float
    ) -> dict[str, Any]:
        from awaithumans.adapters.langgraph._shared import interrupt_task_id, resume_value

        resume: dict[str, Any] = {}
        for pending in state.tasks:
            for interrupt in pending.interrupts:
                task_id = interrupt_task_id(interrupt.value)
                if task_id is None or self._left(task_id):
                    continue
                data = await self._final(http, task_id, deadline)
                resume[interrupt.id] = resume_value({**data, "task_id": task_id})
        return resume

    def _left(self, task_id: str) -> bool:
        with self._lock:
            asked = self._asked.get(task_id)
        # Left by a never rule, or matched by no rule without strict: nobody will answer.
        return asked is not None and asked.outcome in ("left", "pending")

    async def _final(self, http: httpx.AsyncClient, task_id: str, deadline: float) -> Any:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"task {task_id} has no outcome yet")
            polled = await http.get(
                f"/api/tasks/{task_id}/poll", params={"timeout": max(1, min(10, int(left)))}
            )
            polled.raise_for_status()
            data = polled.json()
            if data["status"] in _FINAL:
                return data

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


_FINAL = frozenset({"completed", "timed_out", "cancelled", "verification_exhausted"})


class _NoSuchPerson(Exception):
    """Whom a rule says to act as cannot be found or made in the directory."""


def _people_named(as_: str | Sequence[str] | None) -> tuple[str, ...]:
    if as_ is None:
        return ()
    return (as_,) if isinstance(as_, str) else tuple(as_)


def _named(who: Any) -> str:
    """How ``Asked.answered_by`` names a principal: a user's email, else its label."""
    return str(who.email or who.label or who.id)


def _regex(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern is not None else None


def _waits_for_votes(task: Any) -> bool:
    """Whether a task that took a vote still waits for more (not ended, not under review)."""
    from awaithumans.server.services.lifecycle import ANSWERABLE
    from awaithumans.server.services.policy import policy_of

    return task.status in ANSWERABLE and policy_of(task).counts_votes


#: The most distinct fake people who vote on one task (the server's own cap on approvals).
_MAX_VOTERS = 20


def _person(number: int = 1) -> Any:
    from awaithumans.server.principals import Principal

    # An operator, so it may answer any task (also one assigned to someone, or one whose
    # approvers allow operators), through the same path as a person in the dashboard; the
    # audit trail names it. Votes on one task come from distinct ones.
    suffix = "" if number == 1 else f" {number}"
    return Principal(
        kind="admin",
        id="fake-human" if number == 1 else f"fake-human-{number}",
        label=f"fake human{suffix} (awaithumans.testing)",
        is_operator=True,
    )
