"""Schemathesis stateful testing over the OpenAPI document's links.

The document links every response that carries a task to the operations on that task
(``awaithumans/server/api/links.py``): create -> get / poll / audit / complete / claim /
cancel, and on from each of those. Schemathesis turns the links into a Hypothesis state
machine (``schema.as_state_machine()``) that chains calls with the ids the server returned,
so that answers, claims and cancels reach real tasks in every state instead of 404s.

Only the declared links are followed (schemathesis's own link inference is off), so a link
that names a wrong operation or parameter fails here. Every response must not be a server
error, must use a declared status code and content type, must match the declared schema,
must not leak the server's insides, and a task just created must be found through its links.
In-process app, real SQLite, derandomised and bounded.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import ensure_resource_availability, use_after_free
from schemathesis.config import SchemathesisConfig
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import (
    APIStateMachine,
    StepInput,
    StepOutput,
    normalize_name,
)

from awaithumans.server.api.links import TASK, TASKS, operation_ref
from tests._app_fixtures import make_settings, running_app
from tests.server.test_openapi_fuzz import CHECKS, LEAKS, REQUEST_TIMEOUT, httpx_kwargs

# Scenarios and their length: about 300 calls, 25-30 s on this machine (2 cores, shared).
MAX_EXAMPLES = 30
STEPS = 12
# A long-poll on an open task waits for its timeout (up to 30 s); a scenario caps it at 1 s.
POLL_SECONDS = 1
T = TypeVar("T")
STATEFUL_CHECKS = [*CHECKS, ensure_resource_availability, use_after_free]

# Only the links in the document: inference would add links of its own and hide a broken one.
DECLARED_LINKS_ONLY = SchemathesisConfig.from_dict(
    {"phases": {"stateful": {"inference": {"algorithms": []}}}}
)


class Servers:
    """A fresh app (its own SQLite file) for every scenario, run on the test's event loop.

    A scenario must behave the same each time Hypothesis replays its choices: on one shared
    server an idempotency key or a task list left by an earlier scenario would change the
    answers, and with them which links can be followed. Each app runs in a task of its own,
    so that its lifespan starts and ends in the same task.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, folder: Path, template: Path) -> None:
        self.loop = loop
        self.folder = folder
        # A migrated empty database, copied for each scenario: faster than migrating each.
        self.template = template
        self.started = 0
        self.client: httpx.AsyncClient | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def start(self) -> None:
        """From the state machine's thread: start the next scenario's app."""
        self.started += 1
        path = self.folder / f"scenario-{self.started}.db"
        shutil.copyfile(self.template, path)
        self._run(self._start(f"sqlite+aiosqlite:///{path}"))

    async def _start(self, url: str) -> None:
        ready: asyncio.Future[httpx.AsyncClient] = self.loop.create_future()
        self._stop = stop = asyncio.Event()

        async def serve() -> None:
            async with running_app(make_settings(url)) as (_app, client):
                ready.set_result(client)
                await stop.wait()
                # Still healthy after the scenario.
                health = await client.get("/api/health")
                assert health.status_code == 200, health.text

        self._task = asyncio.create_task(serve())
        self.client = await asyncio.wait_for(asyncio.shield(ready), 30)

    def stop(self) -> None:
        """From the state machine's thread: stop the scenario's app."""
        self._run(self.close())

    async def close(self) -> None:
        """On the loop: stop the running app, if any."""
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        task, self._task, self.client = self._task, None, None
        await task

    def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        """From the state machine's thread: one request to the current scenario's app."""
        client = self.client
        assert client is not None
        return self._run(client.request(**kwargs, timeout=REQUEST_TIMEOUT), REQUEST_TIMEOUT + 5)


def short_poll(query: dict[str, Any] | None) -> dict[str, Any]:
    """The poll's query with any wait the server would accept (and the 25 s default) cut to
    ``POLL_SECONDS``; values the server refuses, which negative cases draw, are kept."""
    query = dict(query or {})
    timeout = query.get("timeout", 25)
    try:
        seconds = int(str(timeout))
    except ValueError:
        return query
    if not isinstance(timeout, bool) and seconds > POLL_SECONDS:
        query["timeout"] = POLL_SECONDS
    return query


def declared_links(document: dict[str, Any]) -> dict[str, set[str]]:
    """Each operation's linked operations, as ``METHOD path`` -> {operationRef}."""
    found: dict[str, set[str]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            for response in op.get("responses", {}).values():
                for link in response.get("links", {}).values():
                    found.setdefault(f"{method.upper()} {path}", set()).add(link["operationRef"])
    return found


# Where a scenario starts: making a task. Schemathesis would also start from listing (an
# empty list on a fresh server, so its links carry no id) and from claim, complete and cancel
# with made-up ids (every POST looks like a maker to it): 404s that the per-operation fuzz
# (test_openapi_fuzz.py) already sends by the hundred, and that here took most of the steps
# from the linked calls.
ROOTS = frozenset({f"POST {TASKS}"})


def machine_for(schema: Any, servers: Servers, stats: Counter[str]) -> type[APIStateMachine]:
    base: Any = schema.as_state_machine()
    # Schemathesis names a root rule after its operation (create_state_machine).
    kept = {normalize_name(f"RANDOM -> {label}") for label in ROOTS}
    assert kept <= base.root_rules, (kept, base.root_rules)
    dropped = base.root_rules - kept

    class TaskWorkflow(base):  # type: ignore[misc]
        """Each scenario on a fresh app; each step through the app's own loop, counted."""

        statistics: ClassVar[Counter[str]] = stats
        root_rules = frozenset(kept)
        _root_labels = ROOTS

        def setup(self) -> None:
            servers.start()
            self.statistics["scenarios"] += 1

        def teardown(self) -> None:
            servers.stop()

        def before_call(self, case: Case[Any]) -> None:
            if case.operation.path.endswith("/poll"):
                case.query = short_poll(case.query)

        def step(self, input: StepInput) -> StepOutput:
            output: StepOutput = super().step(input)
            self.statistics["steps"] += 1
            self.statistics["linked steps" if input.transition else "random starts"] += 1
            label = f"{input.case.operation.label} -> {output.response.status_code}"
            self.statistics[label] += 1
            return output

        def call(self, case: Case[Any], **kwargs: Any) -> Response:
            return Response.from_any(servers.send(httpx_kwargs(case)))

        def validate_response(
            self, response: Response, case: Case[Any], *args: Any, **kwargs: Any
        ) -> None:
            text = response.text or ""
            for leak in LEAKS:
                assert leak not in text, f"{case.method} {case.formatted_path}: {leak!r}"
            case.validate_response(response, checks=STATEFUL_CHECKS, recorder=self.recorder)

    for name in dropped:
        # A class attribute that is not a rule hides the base class's rule from Hypothesis.
        setattr(TaskWorkflow, name, None)
    return TaskWorkflow


async def test_stateful_links_find_no_server_errors(tmp_path: Path) -> None:
    template = tmp_path / "template.db"
    async with running_app(make_settings(f"sqlite+aiosqlite:///{template}")) as (_app, admin):
        document = (await admin.get("/api/openapi.json")).json()
        assert (await admin.get("/api/tasks")).json()["items"] == []
    links = declared_links(document)
    task_ops = {
        operation_ref(TASK + suffix, method)
        for suffix, method in (
            ("", "get"),
            ("/poll", "get"),
            ("/audit", "get"),
            ("/complete", "post"),
            ("/claim", "post"),
            ("/cancel", "post"),
        )
    }
    for source in (
        f"POST {TASKS}",
        f"GET {TASKS}",
        f"GET {TASK}",
        f"POST {TASK}/complete",
        f"POST {TASK}/claim",
        f"POST {TASK}/cancel",
    ):
        assert links.get(source) == task_ops, (source, links.get(source))

    schema = schemathesis.openapi.from_dict(document, config=DECLARED_LINKS_ONLY)
    servers = Servers(asyncio.get_running_loop(), tmp_path, template)
    stats: Counter[str] = Counter()
    machine = machine_for(schema, servers, stats)
    started = time.monotonic()
    failures = 0
    try:
        await asyncio.to_thread(
            machine.run,
            settings=settings(
                max_examples=MAX_EXAMPLES,
                stateful_step_count=STEPS,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            ),
        )
    except BaseException:
        failures = 1  # Hypothesis stops at the first failing scenario and reports it
        raise
    finally:
        # A failing scenario still stops its app (Hypothesis runs teardown); this covers a
        # failure in setup itself.
        await servers.close()
        print(
            f"\nschemathesis stateful: {stats['scenarios']} scenarios, {stats['steps']} steps"
            f" ({stats['linked steps']} through links, {stats['random starts']} random starts)"
            f" in {time.monotonic() - started:.1f} s, {failures} failures"
        )
        for label, count in sorted(stats.items()):
            if " -> " in label:
                print(f"  {count:4d}  {label}")
    # The links were followed, and reached tasks: reads, polls, claims, cancels that landed.
    assert stats["linked steps"] > stats["scenarios"]
    for landed in (
        f"POST {TASKS} -> 201",
        f"GET {TASK} -> 200",
        f"GET {TASK}/audit -> 200",
        f"GET {TASK}/poll -> 200",
        f"POST {TASK}/claim -> 200",
        f"POST {TASK}/cancel -> 200",
    ):
        assert stats[landed] > 0, (landed, stats)
