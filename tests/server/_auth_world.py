"""The world the auth matrix runs in: one in-process app (real lifespan, real SQLite) with
every kind of caller the server knows, the tasks they reach for, and fresh objects for the
requests that use one up.

Callers (the matrix's columns):

* ``anonymous``: no credential at all;
* ``reviewer``: reviewer A, signed in with a password, the assignee of T1;
* ``reviewer-2``: reviewer C, signed in, assigned nothing (a mere session grants nothing);
* ``reviewer-T2``: reviewer B, signed in, the assignee of T2 (another task);
* ``agent``: agent key K1, which created T1;
* ``agent-2``: agent key K2, which created T2;
* ``operator``: an operator signed in with a password;
* ``admin``: the admin bearer token;
* ``slack-only``: S, a Slack-only reviewer (no email, no password) signed in through the
  signed handoff link of the task TS; S is also assigned TS2, which the link does not open.

Every caller carries a CSRF cookie and its matching form token, so that a form post is
refused for who sends it, never for a missing token (CSRF has its own tests). Cookies go
out as an explicit header and the client's jar is emptied after each request: a response
that signs someone in or out cannot change who the next request is.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from awaithumans.server.auth import SESSION_COOKIE
from awaithumans.server.dashboard.csrf import CSRF_COOKIE
from awaithumans.server.services.handoff import handoff_url
from awaithumans.server.settings import EmailSettings, SlackSettings, VerifierSettings
from tests._app_fixtures import ADMIN_TOKEN, make_settings, running_app
from tests.support.llm_standin import KEYS, ProviderStandIn
from tests.support.slack_standin import BOT_TOKEN, SIGNING_SECRET, SlackStandIn

ANON = "anonymous"
REVIEWER = "reviewer"
REVIEWER_2 = "reviewer-2"
REVIEWER_T2 = "reviewer-T2"
AGENT = "agent"
AGENT_2 = "agent-2"
OPERATOR = "operator"
ADMIN = "admin"
SLACK_ONLY = "slack-only"
CALLERS = (ANON, REVIEWER, REVIEWER_2, REVIEWER_T2, AGENT, AGENT_2, OPERATOR, ADMIN, SLACK_ONLY)
#: Callers whose credential is a dashboard session (the others sign no page in).
SESSIONS = frozenset({REVIEWER, REVIEWER_2, REVIEWER_T2, OPERATOR, SLACK_ONLY})
#: Callers who see every task.
SEE_ALL = frozenset({OPERATOR, ADMIN})

INSTALL_TOKEN = "matrix-install-" + "x" * 16
INBOUND_SECRET = "matrix-inbound-" + "x" * 16
CLIENT_ID = "1234.5678"
SLACK_MEMBER = "U0CAROL03"  # a member of the Slack stand-in, with no email

# A switch answers it, so the dashboard form and the mail's one-click buttons both take it.
RESPONSE_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
}


@dataclass
class Caller:
    """One column of the matrix: what its requests present."""

    name: str
    bearer: str | None = None
    session: str | None = None
    csrf_cookie: str = ""
    csrf_token: str = ""
    user_id: str | None = None
    email: str | None = None
    password: str | None = None
    link: str | None = None  # the handoff link that signs the Slack-only reviewer in

    def headers(self) -> dict[str, str]:
        cookies = [f"{CSRF_COOKIE}={self.csrf_cookie}"]
        if self.session:
            cookies.append(f"{SESSION_COOKIE}={self.session}")
        headers = {"Cookie": "; ".join(cookies)}
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        return headers


@dataclass(frozen=True)
class Seen:
    """A task, the strings only someone who may see it can know, and who may."""

    id: str
    secrets: tuple[str, ...]  # its title and a marker in its payload
    visible_to: frozenset[str]


@dataclass
class World:
    app: FastAPI
    #: One client per caller, each from its own address (the server counts some doors per
    #: address), none with a credential of its own: each request names its caller.
    clients: dict[str, httpx.AsyncClient]
    admin: httpx.AsyncClient  # the admin token, to set things up and look at them
    slack: SlackStandIn
    callers: dict[str, Caller] = field(default_factory=dict)
    tasks: dict[str, Seen] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # t1, t1_closed, v1, t2, ts, ts2, ...
    _count: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def unique(self) -> str:
        return f"{next(self._count):04d}"

    # -- sending -------------------------------------------------------------------------

    async def send(
        self,
        caller: Caller,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        data: dict[str, str] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request as ``caller``, and nothing of it kept for the next one."""
        http = self.clients[caller.name]
        http.cookies.clear()
        try:
            return await http.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                content=content,
                headers={**caller.headers(), **(headers or {})},
            )
        finally:
            http.cookies.clear()

    # -- callers -------------------------------------------------------------------------

    async def _csrf(self, caller: Caller) -> None:
        page = await self.send(caller, "GET", "/login")
        assert page.status_code == 200, page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        cookie = page.cookies.get(CSRF_COOKIE)
        assert token is not None, "the sign-in page has no CSRF field"
        assert cookie, "the sign-in page sets no CSRF cookie"
        caller.csrf_cookie, caller.csrf_token = cookie, token.group(1)

    async def sign_in(self, caller: Caller) -> None:
        """(Re)open the caller's session: its password on the sign-in form, or its link."""
        signed_out = Caller(caller.name, csrf_cookie=caller.csrf_cookie)
        if caller.link is not None:
            resp = await self.send(signed_out, "GET", caller.link)
        else:
            assert caller.email
            assert caller.password
            form = {
                "csrf_token": caller.csrf_token,
                "email": caller.email,
                "password": caller.password,
                "next": "/",
            }
            resp = await self.send(signed_out, "POST", "/login", data=form)
        assert resp.status_code == 303, resp.text
        session = resp.cookies.get(SESSION_COOKIE)
        assert session, f"{caller.name}: no session cookie"
        caller.session = session

    # -- objects -------------------------------------------------------------------------

    async def add_user(self, name: str, **body: Any) -> str:
        made = await self.admin.post("/api/admin/users", json={"display_name": name, **body})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    async def add_key(self, name: str) -> tuple[str, str]:
        """A new agent key: (id, the key itself)."""
        made = await self.admin.post("/api/admin/agent-keys", json={"name": name})
        assert made.status_code == 201, made.text
        return str(made.json()["id"]), str(made.json()["key"])

    async def create_task(
        self, by: Caller, label: str, visible_to: frozenset[str], **extra: Any
    ) -> str:
        """A task created with ``by``'s credential; its title and payload carry a marker
        that only ``visible_to`` (and operators) may ever be shown."""
        marker = f"secret-{label}-{uuid.uuid4().hex[:10]}"
        title = f"Matrix task {label} {uuid.uuid4().hex[:10]}"
        body = {
            "task": title,
            "payload": {"note": marker},
            "payload_schema": {"type": "object", "properties": {"note": {"type": "string"}}},
            "response_schema": RESPONSE_SCHEMA,
            "timeout_seconds": 3600,
            "idempotency_key": f"matrix-{uuid.uuid4().hex}",
            **extra,
        }
        made = await self.send(by, "POST", "/api/tasks", json=body)
        assert made.status_code == 201, made.text
        task_id = str(made.json()["id"])
        self.tasks[task_id] = Seen(task_id, (title, marker), visible_to | SEE_ALL)
        return task_id

    async def fresh_task(self) -> str:
        """Another T1: created by K1, assigned to reviewer A, open."""
        return await self.create_task(
            self.callers[AGENT],
            "T1-twin",
            frozenset({REVIEWER, AGENT}),
            assign_to={"user_id": self.callers[REVIEWER].user_id},
        )

    async def fresh_key(self) -> str:
        key_id, _key = await self.add_key(f"matrix spare key {self.unique()}")
        return key_id

    async def fresh_identity(self) -> str:
        name = f"spare{self.unique()}"
        saved = await self.admin.put(
            f"/api/admin/email-identities/{name}", json={"from_address": f"{name}@acme.test"}
        )
        assert saved.status_code == 200, saved.text
        return name

    def forbidden(self, caller: str) -> list[Seen]:
        """The tasks ``caller`` must never be shown anything of."""
        return [t for t in self.tasks.values() if caller not in t.visible_to]


def matrix_settings(url: str, slack: SlackStandIn) -> Any:
    """Every part with routes switched on: Slack (static token and OAuth installs), email
    (replies by the inbound route) and verifiers (pointed at the providers' stand-in)."""
    return make_settings(
        url,
        slack=SlackSettings(
            bot_token=BOT_TOKEN,
            signing_secret=SIGNING_SECRET,
            client_id=CLIENT_ID,
            client_secret="client-secret",
            install_token=INSTALL_TOKEN,
            api_url=slack.api_url,
        ),
        email=EmailSettings(transport="logging", inbound_secret=INBOUND_SECRET),
        # The verifier's provider fails on purpose (see ``v1``): its job waits to be retried,
        # which is what the "retry now" routes act on; backoff keeps the background quiet.
        verifier=VerifierSettings(retry_max_seconds=60),
    )


@asynccontextmanager
async def built(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    """The app, its first operator, the people, keys and tasks the matrix names."""
    with SlackStandIn() as slack, ProviderStandIn() as providers:
        # The provider SDK reads its key and endpoint from the process's environment.
        # OpenAI's: of the providers' SDKs, the quickest to import (the first verification
        # imports it on the server's loop).
        monkeypatch.setenv("OPENAI_API_KEY", KEYS["OPENAI_API_KEY"])
        monkeypatch.setenv("OPENAI_BASE_URL", f"{providers.url}/v1")
        providers.fail_next(10_000, "status", status=500)
        settings = matrix_settings(f"sqlite+aiosqlite:///{tmp_path}/matrix.db", slack)
        async with running_app(settings) as (app, admin), AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(
                    httpx.AsyncClient(
                        # A fault in the app is a 500 in its cell, not an exception out of
                        # the test.
                        transport=httpx.ASGITransport(
                            app=app, raise_app_exceptions=False, client=(f"10.0.0.{n}", 4000)
                        ),
                        base_url="http://testserver",
                    )
                )
                for n, name in enumerate(CALLERS, start=1)
            }
            world = World(app, clients, admin, slack)
            await _populate(world)
            yield world


async def _populate(w: World) -> None:
    callers = w.callers = {name: Caller(name) for name in CALLERS}
    for caller in callers.values():
        await w._csrf(caller)

    operator = callers[OPERATOR]
    operator.email, operator.password = "ops@acme.test", "operator password 1"
    made = await w.send(
        callers[ANON],
        "POST",
        "/api/setup/operator",
        json={
            "token": w.app.state.setup_token,
            "email": operator.email,
            "display_name": "Ops",
            "password": operator.password,
        },
    )
    assert made.status_code == 201, made.text
    operator.user_id = str(made.json()["id"])
    for name, letter in ((REVIEWER, "a"), (REVIEWER_2, "c"), (REVIEWER_T2, "b")):
        who = callers[name]
        who.email, who.password = f"rev-{letter}@acme.test", f"reviewer {letter} password"
        who.user_id = await w.add_user(
            f"Reviewer {letter.upper()}", email=who.email, password=who.password
        )
    slack_only = callers[SLACK_ONLY]
    slack_only.user_id = await w.add_user("Sam Slack", slack_user_id=SLACK_MEMBER)
    # What the routes' parameters name when no fresh object is needed.
    w.ids.update(team="T0NOTHERE", static="app.js", identity="matrix")
    # Targets of the user routes, and the account the sign-in routes sign in.
    w.ids["user"] = await w.add_user("Dee Target", email="dee@acme.test")
    w.ids["login_email"], w.ids["login_password"] = "lou@acme.test", "lou login password"
    await w.add_user("Lou Login", email=w.ids["login_email"], password=w.ids["login_password"])

    agent, agent_2 = callers[AGENT], callers[AGENT_2]
    _id, agent.bearer = await w.add_key("K1")
    _id, agent_2.bearer = await w.add_key("K2")
    callers[ADMIN].bearer = ADMIN_TOKEN

    a_sees = frozenset({REVIEWER, AGENT})
    assign_a = {"user_id": callers[REVIEWER].user_id}
    w.ids["t1"] = await w.create_task(agent, "T1", a_sees, assign_to=assign_a)
    closed = await w.create_task(agent, "T1-closed", a_sees, assign_to=assign_a)
    cancelled = await w.send(agent, "POST", f"/api/tasks/{closed}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    w.ids["t1_closed"] = closed
    # V1: answered, its verification failing at the provider and waiting for a retry.
    verifier = {"provider": "openai", "instructions": "Check the answer."}
    v1 = await w.create_task(agent, "V1", a_sees, assign_to=assign_a, verifier_config=verifier)
    answered = await w.admin.post(f"/api/tasks/{v1}/complete", json={"response": {"ok": True}})
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "submitted"
    w.ids["v1"] = v1
    w.ids["t2"] = await w.create_task(
        agent_2,
        "T2",
        frozenset({REVIEWER_T2, AGENT_2}),
        assign_to={"user_id": callers[REVIEWER_T2].user_id},
    )
    admin = callers[ADMIN]
    assign_s = {"user_id": slack_only.user_id}
    ts = await w.create_task(admin, "TS", frozenset({SLACK_ONLY}), assign_to=assign_s)
    w.ids["ts"] = ts
    # Also the Slack-only reviewer's, but not what their link opens.
    w.ids["ts2"] = await w.create_task(admin, "TS2", frozenset(), assign_to=assign_s)
    mailed = await w.create_task(admin, "mailed", frozenset(), notify=["email:mia@acme.test"])
    jobs = await w.admin.get("/api/admin/deliveries", params={"task_id": mailed})
    assert jobs.status_code == 200, jobs.text
    assert jobs.json(), "the mailed task has no delivery"
    w.ids["delivery"] = str(jobs.json()[0]["id"])

    ctx = w.app.state.ctx
    slack_only.link = handoff_url(
        ctx.keyring, "", str(slack_only.user_id), ts, _deadline_of(await _task(w, ts))
    )
    for name in SESSIONS:
        await w.sign_in(callers[name])


async def _task(w: World, task_id: str) -> dict[str, Any]:
    got = await w.admin.get(f"/api/tasks/{task_id}")
    assert got.status_code == 200, got.text
    found: dict[str, Any] = got.json()
    return found


def _deadline_of(task: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(task["timeout_at"]).replace("Z", "+00:00"))
