"""The auth matrix: every route of the server × every kind of caller -> the status it gets.

The routes come from the app itself (``create_app`` with every channel switched on), so a
route added without an entry in :data:`ROUTES` fails :func:`test_the_table_names_every_route`,
and so does an entry whose route is gone. Each entry names an access class (who may do
what), the success status of an allowed caller, and a minimal valid request; the classes
say what each of the nine callers of ``tests/server/_auth_world.py`` gets. An allowed
caller gets the route's real success (never a 422 for a sloppy body); anyone else a
refusal (401, 403, 404, or the dashboard's 303 to the sign-in page), never a 2xx or a 500.

Whatever the status, no response may carry anything of a task its caller may not see:
each task's title and a marker in its payload are secrets, and so is its id, unless the
request named it. Routes that act on something (answer, claim, cancel, revoke...) get a
fresh object per caller; routes that end a session are followed by signing back in.

Channel routes answer to the channel's own credential (Slack's signature, the inbound
secret, a signed link), which none of the nine callers has: each of them is refused, and
one more request with that credential shows the route really works.

``pytest -s`` prints the matrix and its counts.
"""

from __future__ import annotations

import json as jsonlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from awaithumans.server.app import create_app
from awaithumans.server.notify.email.links import AnswerLink, answer_url
from awaithumans.server.notify.slack.oauth import STATE_COOKIE
from tests._app_fixtures import running_app
from tests.server._auth_world import (
    ADMIN,
    AGENT,
    AGENT_2,
    ANON,
    CALLERS,
    INBOUND_SECRET,
    INSTALL_TOKEN,
    OPERATOR,
    REVIEWER,
    REVIEWER_2,
    REVIEWER_T2,
    SESSIONS,
    SLACK_ONLY,
    World,
    built,
    matrix_settings,
)
from tests.support.slack_standin import SlackStandIn, signed

# -- access classes -------------------------------------------------------------------------

#: What a caller gets: the route's success, the dashboard's redirect to sign in, or a status.
Expect = Literal["ok", "login"] | int


def _by_caller(default: Expect, **named: Expect) -> dict[str, Expect]:
    """``default`` for every caller but those named (by their Python-friendly names)."""
    names = {
        "anon": ANON,
        "reviewer": REVIEWER,
        "reviewer_2": REVIEWER_2,
        "reviewer_t2": REVIEWER_T2,
        "agent": AGENT,
        "agent_2": AGENT_2,
        "operator": OPERATOR,
        "admin": ADMIN,
        "slack_only": SLACK_ONLY,
    }
    table: dict[str, Expect] = dict.fromkeys(CALLERS, default)
    table.update({names[k]: v for k, v in named.items()})
    return table


def _pages(signed_in: Mapping[str, Expect], signed_out: Expect = "login") -> dict[str, Expect]:
    """A dashboard class: bearer tokens sign no page in, so every caller without a session
    is ``signed_out`` (a redirect to sign in, or 401 for the live-update fragments)."""
    table: dict[str, Expect] = dict.fromkeys(CALLERS, signed_out)
    table.update({k: v for k, v in signed_in.items() if k in SESSIONS})
    return table


#: Everyone, signed in or not.
PUBLIC = _by_caller("ok")
#: Any credential of the JSON API (a session, an agent key, the admin token).
API_SIGNED_IN = _by_caller("ok", anon=401)
API_OPERATOR = _by_caller(403, anon=401, operator="ok", admin="ok")
#: Reading T1: its assignee, the agent that created it, operators. Anyone else's
#: "not found" is the same as for a task that does not exist.
API_TASK_SEE = _by_caller(404, anon=401, reviewer="ok", agent="ok", operator="ok", admin="ok")
#: Answering or claiming it: people only (an agent key is refused before the task is read).
API_TASK_ANSWER = _by_caller(
    404, anon=401, reviewer="ok", agent=403, agent_2=403, operator="ok", admin="ok"
)
#: Cancelling it: operators and the agent that created it; its reviewer sees it, may not.
API_TASK_CANCEL = _by_caller(404, anon=401, reviewer=403, agent="ok", operator="ok", admin="ok")
#: Signed by the channel (Slack's signature, the inbound secret): nobody's login counts.
CHANNEL_SIGNED = _by_caller(401)
#: A signed link is the credential (handoff, one-click answers, Slack's install flow).
LINK_MISSING = _by_caller(400)

PAGE_SIGNED_IN = _pages(_by_caller("ok"))
FRAGMENT_SIGNED_IN = _pages(_by_caller("ok"), 401)
#: One's own account: a handoff link's session is for its one task only.
PAGE_ACCOUNT = _pages(_by_caller("ok", slack_only=403))
PAGE_OPERATOR = _pages(_by_caller(403, operator="ok"))
PAGE_TASK_SEE = _pages(_by_caller(404, reviewer="ok", operator="ok"))
#: Answering or claiming on the page: whoever sees it there may (its reviewer, operators).
PAGE_TASK_ANSWER = PAGE_TASK_SEE
FRAGMENT_TASK_SEE = _pages(_by_caller(404, reviewer="ok", operator="ok"), 401)
#: The task's reviewer sees it, but only an operator may (cancel, retry a verification).
PAGE_TASK_OPERATOR = _pages(_by_caller(404, reviewer=403, operator="ok"))


# -- the table --------------------------------------------------------------------------------

# Path parameters, and ``{name}`` in query, form and JSON values, are filled per request:
# a name of ``World.ids``, or one of these made fresh for each caller.
FRESH_TASK = "fresh_task"  # another T1 (K1's, assigned to reviewer A): used up by the request
FRESH_KEY = "fresh_key"
FRESH_IDENTITY = "fresh_identity"
DEFAULTS = {
    "task_id": "t1",
    "user_id": "user",
    "key_id": FRESH_KEY,
    "delivery_id": "delivery",
    "name": FRESH_IDENTITY,
    "team_id": "team",
    "path": "static",
}

Own = Callable[[World], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    access: Mapping[str, Expect]
    ok: int = 200
    query: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None  # a dashboard form: the caller's CSRF token added
    use: Mapping[str, str] = field(default_factory=dict)  # placeholder -> what fills it
    overrides: Mapping[str, Expect] = field(default_factory=dict)
    ends_session: bool = False  # sign the session callers back in after each request
    own: Own | None = None  # a request with the channel's own credential ...
    own_ok: int = 200  # ... and its success status

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    def expect(self, caller: str) -> Expect:
        return self.overrides.get(caller, self.access[caller])


def _task_body() -> dict[str, Any]:
    return {
        "task": "Matrix new task",
        "payload": {},
        "payload_schema": {"type": "object"},
        "response_schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        "timeout_seconds": 600,
        "idempotency_key": "matrix-new-{unique}",
    }


# The channel's own credential, for the routes no caller's login opens.


async def _slack_interaction(w: World) -> httpx.Response:
    # A press on a link button: Slack opens the link itself, the app only acknowledges it.
    payload = {
        "type": "block_actions",
        "team": {"id": "T0STANDIN"},
        "user": {"id": "U0ALICE01", "team_id": "T0STANDIN"},
        "actions": [{"action_id": "open_link", "value": w.ids["t1"]}],
    }
    body = urlencode({"payload": jsonlib.dumps(payload)}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded", **signed(body)}
    return await w.send(
        w.callers[ANON], "POST", "/api/channels/slack/interactions", content=body, headers=headers
    )


async def _slack_event(w: World) -> httpx.Response:
    body = jsonlib.dumps({"type": "url_verification", "challenge": "matrix-challenge"}).encode()
    headers = {"content-type": "application/json", **signed(body)}
    resp = await w.send(
        w.callers[ANON], "POST", "/api/channels/slack/events", content=body, headers=headers
    )
    assert resp.json() == {"challenge": "matrix-challenge"}
    return resp


async def _slack_install_start(w: World) -> httpx.Response:
    resp = await w.send(
        w.callers[ANON],
        "GET",
        "/api/channels/slack/oauth/start",
        params={"install_token": INSTALL_TOKEN},
    )
    assert urlsplit(resp.headers.get("location", "")).netloc == "slack.com"
    return resp


async def _slack_install_callback(w: World) -> httpx.Response:
    started = await _slack_install_start(w)
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    nonce = started.cookies[STATE_COOKIE]
    anon = w.callers[ANON]
    resp = await w.send(
        anon,
        "GET",
        "/api/channels/slack/oauth/callback",
        params={"code": "code-T0MATRIX", "state": state},
        headers={"Cookie": f"{anon.headers()['Cookie']}; {STATE_COOKIE}={nonce}"},
    )
    assert "Slack is installed" in resp.text
    return resp


async def _answer_link(w: World) -> tuple[str, str]:
    """A fresh T1 and the one-click link mailed to its reviewer, A."""
    task_id = await w.fresh_task()
    until = datetime.now(UTC) + timedelta(hours=1)
    user_id = w.callers[REVIEWER].user_id
    assert user_id is not None
    link = answer_url(
        w.app.state.ctx.keyring, "", AnswerLink(user_id, task_id, "ok", True, 0, until)
    )
    return task_id, link


async def _email_confirm(w: World) -> httpx.Response:
    _task_id, link = await _answer_link(w)
    return await w.send(w.callers[ANON], "GET", link)


async def _email_answer(w: World) -> httpx.Response:
    task_id, link = await _answer_link(w)
    anon = w.callers[ANON]
    token = parse_qs(urlsplit(link).query)["t"][0]
    resp = await w.send(
        anon,
        "POST",
        urlsplit(link).path,
        data={"t": token, "csrf_token": anon.csrf_token},
    )
    assert "Answer recorded" in resp.text
    status = (await w.admin.get(f"/api/tasks/{task_id}")).json()["status"]
    assert status == "completed"
    return resp


async def _email_inbound(w: World) -> httpx.Response:
    mail = (
        b"From: someone@example.com\r\nTo: reply+nothing@acme.test\r\n"
        b"Subject: hello\r\nMessage-ID: <m1@example.com>\r\n\r\nHi.\r\n"
    )
    return await w.send(
        w.callers[ANON],
        "POST",
        "/api/channels/email/inbound",
        content=mail,
        headers={"Authorization": f"Bearer {INBOUND_SECRET}", "content-type": "message/rfc822"},
    )


async def _handoff(w: World) -> httpx.Response:
    link = w.callers[SLACK_ONLY].link
    assert link is not None
    resp = await w.send(w.callers[ANON], "GET", link)
    assert resp.headers["location"] == f"/task?id={w.ids['ts']}"
    return resp


ANSWER_FORM = {"id": "{task_id}", "f.ok": "true"}
LOGIN_FORM = {"email": "{login_email}", "password": "{login_password}", "next": "/"}
USER_FORM = {"display_name": "Dee Target", "email": "dee@acme.test"}
IDENTITY = {"from_address": "matrix@acme.test"}

ROUTES: tuple[Route, ...] = (
    # -- the JSON API: tasks
    Route("POST", "/api/tasks", API_SIGNED_IN, 201, json=_task_body(),
          # A handoff link's session is for its one task: it creates none.
          overrides={SLACK_ONLY: 403}),
    Route("GET", "/api/tasks", API_SIGNED_IN),
    Route("GET", "/api/tasks/{task_id}", API_TASK_SEE),
    Route("GET", "/api/tasks/{task_id}/poll", API_TASK_SEE, query={"timeout": "1"},
          use={"task_id": "t1_closed"}),  # a finished task: the long-poll answers at once
    Route("GET", "/api/tasks/{task_id}/audit", API_TASK_SEE),
    Route("POST", "/api/tasks/{task_id}/complete", API_TASK_ANSWER,
          json={"response": {"ok": True}}, use={"task_id": FRESH_TASK}),
    Route("POST", "/api/tasks/{task_id}/verify", API_OPERATOR, use={"task_id": "v1"}),
    Route("POST", "/api/tasks/{task_id}/claim", API_TASK_ANSWER, use={"task_id": FRESH_TASK}),
    Route("POST", "/api/tasks/{task_id}/cancel", API_TASK_CANCEL, json={"reason": "matrix"},
          use={"task_id": FRESH_TASK}),
    # -- the JSON API: setup, sign-in
    Route("POST", "/api/setup/operator", _by_caller(403),  # done: the token was used
          json={"token": "used-up", "email": "x@acme.test", "display_name": "X",
                "password": "another operator pass"}),
    Route("POST", "/api/auth/login", PUBLIC,
          json={"email": "{login_email}", "password": "{login_password}"}),
    Route("POST", "/api/auth/logout", PUBLIC, 204, ends_session=True),
    Route("GET", "/api/auth/me", API_SIGNED_IN),
    # -- the JSON API: operators
    Route("GET", "/api/admin/users", API_OPERATOR),
    Route("POST", "/api/admin/users", API_OPERATOR, 201,
          json={"display_name": "New {unique}", "email": "new{unique}@acme.test"}),
    Route("PATCH", "/api/admin/users/{user_id}", API_OPERATOR, json={"display_name": "Dee"}),
    Route("DELETE", "/api/admin/users/{user_id}", API_OPERATOR),
    Route("GET", "/api/admin/agent-keys", API_OPERATOR),
    Route("POST", "/api/admin/agent-keys", API_OPERATOR, 201, json={"name": "matrix {unique}"}),
    Route("DELETE", "/api/admin/agent-keys/{key_id}", API_OPERATOR, 204),
    Route("GET", "/api/admin/deliveries", API_OPERATOR),
    Route("GET", "/api/stats", API_OPERATOR, query={"group_by": "channel"}),
    Route("POST", "/api/admin/deliveries/{delivery_id}/redeliver", API_OPERATOR, 202),
    Route("GET", "/api/admin/email-identities", API_OPERATOR),
    Route("PUT", "/api/admin/email-identities/{name}", API_OPERATOR, json=IDENTITY,
          use={"name": "identity"}),
    Route("DELETE", "/api/admin/email-identities/{name}", API_OPERATOR, 204),
    # -- public
    Route("GET", "/api/health", PUBLIC),
    Route("GET", "/api/ready", PUBLIC),
    # Task counts: only the metrics token (not configured here) or the admin token.
    Route("GET", "/metrics", _by_caller(401, admin="ok")),
    Route("GET", "/api/version", PUBLIC),
    Route("GET", "/api/receipts/public-keys", PUBLIC),
    Route("GET", "/api/openapi.json", PUBLIC),
    Route("GET", "/api/docs", PUBLIC),
    Route("GET", "/docs/oauth2-redirect", PUBLIC),
    Route("GET", "/static/{path}", PUBLIC),
    # -- channels
    Route("POST", "/api/channels/slack/interactions", CHANNEL_SIGNED,
          form={"payload": "{}"}, own=_slack_interaction),
    Route("POST", "/api/channels/slack/events", CHANNEL_SIGNED,
          json={"type": "url_verification", "challenge": "c"}, own=_slack_event),
    Route("GET", "/api/channels/slack/oauth/start", _by_caller(403),  # no install token
          own=_slack_install_start, own_ok=303),
    Route("GET", "/api/channels/slack/oauth/callback", LINK_MISSING,  # no signed state
          query={"code": "code-T0EVIL"}, own=_slack_install_callback),
    Route("GET", "/api/channels/email/answer", LINK_MISSING, own=_email_confirm),
    Route("POST", "/api/channels/email/answer", LINK_MISSING, form={}, own=_email_answer),
    Route("POST", "/api/channels/email/inbound", CHANNEL_SIGNED, own=_email_inbound),
    # -- dashboard: setup, sign-in, one's account
    Route("GET", "/setup", LINK_MISSING),  # done: no setup link is valid any more
    Route("POST", "/setup", _by_caller(403),
          form={"token": "used-up", "email": "x@acme.test", "display_name": "X",
                "password": "another operator pass",
                "password_confirm": "another operator pass"}),
    # Signed in already: straight on to where the page would have sent them.
    Route("GET", "/login", PUBLIC, overrides=dict.fromkeys(SESSIONS, 303)),
    Route("POST", "/login", PUBLIC, 303, form=LOGIN_FORM),
    Route("POST", "/logout", PUBLIC, 303, form={}, ends_session=True),
    Route("GET", "/handoff", LINK_MISSING, own=_handoff, own_ok=303),
    Route("GET", "/account", PAGE_ACCOUNT),
    Route("POST", "/account/password", PAGE_ACCOUNT, 303,
          form={"current_password": "{password}", "new_password": "{password}",
                "new_password_confirm": "{password}"}),
    Route("POST", "/account/sign-out", PAGE_ACCOUNT, 303, form={}, ends_session=True),
    Route("POST", "/account/delegation", PAGE_ACCOUNT, 303, form={"end_delegation": "1"}),
    # -- dashboard: lists and tasks
    Route("GET", "/", PAGE_SIGNED_IN),
    Route("GET", "/ui/queue", FRAGMENT_SIGNED_IN),
    Route("GET", "/audit", PAGE_SIGNED_IN),
    Route("GET", "/ui/audit", FRAGMENT_SIGNED_IN),
    # A sequence from the future is answered at once (no long-poll in the matrix).
    Route("GET", "/ui/changes", FRAGMENT_SIGNED_IN, query={"since": "999999999"}),
    Route("GET", "/task", PAGE_TASK_SEE, query={"id": "{task_id}"}),
    Route("GET", "/ui/task", FRAGMENT_TASK_SEE, query={"id": "{task_id}"}),
    Route("POST", "/task/submit", PAGE_TASK_ANSWER, 303, form=ANSWER_FORM,
          use={"task_id": FRESH_TASK}),
    Route("POST", "/task/verify", PAGE_TASK_OPERATOR, 303, form={"id": "{task_id}"},
          use={"task_id": "v1"}),
    Route("POST", "/task/claim", PAGE_TASK_ANSWER, 303, form={"id": "{task_id}"},
          use={"task_id": FRESH_TASK}),
    Route("POST", "/task/cancel", PAGE_TASK_OPERATOR, 303,
          form={"id": "{task_id}", "reason": "matrix"}, use={"task_id": FRESH_TASK}),
    # Bulk answer: a page of one result per id for any session (someone else's task is
    # "no such task" there; one not opened is refused), so every session gets a 200.
    Route("GET", "/bulk", PAGE_SIGNED_IN, query={"id": "{task_id}"}),
    Route("POST", "/bulk", PAGE_SIGNED_IN, form=ANSWER_FORM, use={"task_id": FRESH_TASK}),
    # -- dashboard: operators
    Route("GET", "/analytics", PAGE_OPERATOR),
    Route("GET", "/users", PAGE_OPERATOR),
    Route("POST", "/users", PAGE_OPERATOR, 303,
          form={"display_name": "Added {unique}", "email": "added{unique}@acme.test"}),
    Route("GET", "/users/{user_id}", PAGE_OPERATOR),
    Route("POST", "/users/{user_id}", PAGE_OPERATOR, 303, form=USER_FORM),
    Route("POST", "/users/{user_id}/deactivate", PAGE_OPERATOR, 303, form={}),
    Route("POST", "/users/{user_id}/reactivate", PAGE_OPERATOR, 303, form={}),
    Route("POST", "/users/{user_id}/sign-out", PAGE_OPERATOR, 303, form={}),
    Route("POST", "/users/{user_id}/delegation", PAGE_OPERATOR, 303, form={"end_delegation": "1"}),
    Route("GET", "/settings", PAGE_OPERATOR),
    # The new key is shown once, in this very response (201), never behind a redirect.
    Route("POST", "/settings/agent-keys", PAGE_OPERATOR, 201, form={"name": "page {unique}"}),
    Route("POST", "/settings/agent-keys/{key_id}/revoke", PAGE_OPERATOR, 303, form={}),
    Route("POST", "/settings/slack/installs/{team_id}/remove", PAGE_OPERATOR, 303, form={}),
    Route("POST", "/settings/email/identities", PAGE_OPERATOR, 303,
          form={"name": "page{unique}", "from_address": "page{unique}@acme.test",
                "transport": "server"}),
    Route("POST", "/settings/email/identities/{name}/remove", PAGE_OPERATOR, 303, form={}),
)  # fmt: skip


# -- the routes the app declares ----------------------------------------------------------------


def declared_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) ``app`` answers, however its routers are nested.

    FastAPI 0.13x+ keeps included routers as one entry each in ``app.routes``;
    ``fastapi.routing.iter_route_contexts`` (what its OpenAPI generator walks) yields their
    routes with the effective path. Older versions copied every route into ``app.routes``.
    A mount (the static files) counts as ``GET <prefix>/{path}``; the HEAD Starlette adds
    to a GET is not a route of its own.
    """
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    contexts: list[Any] = list(walk(app.routes)) if walk is not None else list(app.routes)
    found: set[tuple[str, str]] = set()
    for route in contexts:
        original = getattr(route, "original_route", route)
        if isinstance(original, Mount):
            found.add(("GET", f"{route.path}/{{path}}"))
            continue
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")
        found.update((method, route.path) for method in methods)
    return found


def test_the_table_names_every_route(tmp_path: Any) -> None:
    with SlackStandIn() as slack:
        app = create_app(matrix_settings(f"sqlite+aiosqlite:///{tmp_path}/routes.db", slack))
    declared = declared_routes(app)
    listed = [r.key for r in ROUTES]
    assert len(set(listed)) == len(listed), "a route is listed twice"
    missing = sorted(declared - set(listed))
    gone = sorted(set(listed) - declared)
    assert not missing, f"routes without an entry in the auth matrix: {missing}"
    assert not gone, f"entries for routes that no longer exist: {gone}"
    # The walk sees what it should: nested routers (Slack's install flow inside its
    # channel), prefixes, the dashboard and the mount.
    assert ("GET", "/api/channels/slack/oauth/callback") in declared
    assert ("POST", "/users/{user_id}/sign-out") in declared
    assert ("GET", "/static/{path}") in declared
    assert len(declared) > 60


# -- running it ---------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass
class Cell:
    route: Route
    caller: str
    expected: Expect
    status: int
    location: str
    body: str
    problem: str | None = None

    @property
    def label(self) -> str:
        if self.status == 303 and self.location.startswith("/login?next="):
            return "→login"
        return str(self.status)


class Filler:
    """Fills one request's placeholders, each name once (a fresh task stays the same task
    in the path and in the form)."""

    def __init__(self, world: World, route: Route, caller: str) -> None:
        self.world = world
        self.route = route
        self.caller = world.callers[caller]
        self.values: dict[str, str] = {}

    async def value(self, name: str) -> str:
        if name not in self.values:
            self.values[name] = await self._make(name)
        return self.values[name]

    async def _make(self, name: str) -> str:
        w = self.world
        if name == "unique":
            return w.unique()
        if name == "password":
            return self.caller.password or "no password"
        what = self.route.use.get(name, DEFAULTS.get(name, name))
        if what == FRESH_TASK:
            return await w.fresh_task()
        if what == FRESH_KEY:
            return await w.fresh_key()
        if what == FRESH_IDENTITY:
            return await w.fresh_identity()
        return w.ids[what]

    async def text(self, template: str) -> str:
        out = template
        for name in set(_PLACEHOLDER.findall(template)):
            out = out.replace(f"{{{name}}}", await self.value(name))
        return out

    async def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return await self.text(value)
        if isinstance(value, dict):
            return {k: await self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await self.json(v) for v in value]
        return value


async def run_cell(world: World, route: Route, caller_name: str) -> Cell:
    caller = world.callers[caller_name]
    fill = Filler(world, route, caller_name)
    path = await fill.text(route.path)
    params = {k: await fill.text(v) for k, v in route.query.items()} or None
    body = await fill.json(route.json) if route.json is not None else None
    data = None
    if route.form is not None:
        data = {k: await fill.text(v) for k, v in route.form.items()}
        data["csrf_token"] = caller.csrf_token
    resp = await world.send(caller, route.method, path, params=params, json=body, data=data)
    expected = route.expect(caller_name)
    location = resp.headers.get("location", "")
    cell = Cell(route, caller_name, expected, resp.status_code, location, resp.text)
    cell.problem = _judge(cell, route, resp) or _leak(world, caller_name, resp, fill.values)
    if route.ends_session and caller_name in SESSIONS:
        await world.sign_in(caller)
    return cell


def _judge(cell: Cell, route: Route, resp: httpx.Response) -> str | None:
    expected, status = cell.expected, cell.status
    if status >= 500:
        return f"a {status}: {resp.text[:300]}"
    if expected == "login":
        if cell.label == "→login":
            return None
        return f"expected a redirect to sign in, got {status} {cell.location!r}"
    if expected == "ok":
        if status != route.ok:
            return f"expected {route.ok}, got {status}: {resp.text[:300]}"
        if cell.label == "→login":
            return "expected success, was sent to sign in"
        return None
    if status != expected:
        return f"expected {expected}, got {status}: {resp.text[:300]}"
    return None


def _leak(world: World, caller: str, resp: httpx.Response, named: Mapping[str, str]) -> str | None:
    """Anything in the response of a task the caller may not see (its id only when the
    request did not name it)."""
    text = resp.text + resp.headers.get("location", "")
    asked = set(named.values())
    for task in world.forbidden(caller):
        for secret in task.secrets:
            if secret in text:
                return f"shows {secret!r} of task {task.id}"
        if task.id not in asked and task.id in text:
            return f"names task {task.id}, which it may not see"
    return None


def _print(cells: list[Cell], owns: list[tuple[Route, int]], seconds: float) -> None:
    width = max(len(f"{r.method} {r.path}") for r in ROUTES) + 1
    header = " " * width + "".join(f"{c[:11]:>12}" for c in CALLERS)
    lines = ["", "Auth matrix (status each caller gets; →login: 303 to the sign-in page)", header]
    by_route: dict[tuple[str, str], dict[str, Cell]] = {}
    for cell in cells:
        by_route.setdefault(cell.route.key, {})[cell.caller] = cell
    for route in ROUTES:
        row = by_route[route.key]
        marks = "".join(f"{row[c].label + ('!' if row[c].problem else ''):>12}" for c in CALLERS)
        lines.append(f"{route.method + ' ' + route.path:<{width}}{marks}")
    counts = Counter(c.label for c in cells)
    allowed = sum(1 for c in cells if c.expected == "ok")
    lines += [
        "",
        f"{len(ROUTES)} routes × {len(CALLERS)} callers = {len(cells)} requests "
        f"({allowed} allowed, {len(cells) - allowed} refused), in {seconds:.1f} s",
        "outcomes: " + ", ".join(f"{label}: {n}" for label, n in sorted(counts.items())),
        f"with the channel's own credential: {len(owns)} routes, "
        + ", ".join(f"{r.method} {r.path} -> {s}" for r, s in owns),
    ]
    print("\n".join(lines))


@pytest.fixture
async def world(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    async with built(tmp_path, monkeypatch) as w:
        yield w


async def test_auth_matrix(world: World) -> None:
    started = time.monotonic()
    cells: list[Cell] = []
    for route in ROUTES:
        for caller in CALLERS:
            cells.append(await run_cell(world, route, caller))
    owns: list[tuple[Route, int]] = []
    problems = [
        f"{c.route.method} {c.route.path} as {c.caller}: {c.problem}" for c in cells if c.problem
    ]
    for route in ROUTES:
        if route.own is None:
            continue
        resp = await route.own(world)
        owns.append((route, resp.status_code))
        if resp.status_code != route.own_ok:
            problems.append(
                f"{route.method} {route.path} with its own credential: expected "
                f"{route.own_ok}, got {resp.status_code}: {resp.text[:300]}"
            )
    _print(cells, owns, time.monotonic() - started)
    assert not problems, "\n".join(problems)
    _shown_where_allowed(world, cells)


def _shown_where_allowed(world: World, cells: list[Cell]) -> None:
    """The leak check has teeth: the lists and pages it found clean do show the tasks their
    caller may see (an empty page would pass it too)."""
    body = {(c.route.key, c.caller): c.body for c in cells}
    ids, tasks = world.ids, world.tasks
    title = {name: tasks[ids[name]].secrets[0] for name in ("t1", "t2", "ts", "ts2")}
    queue, api_list = ("GET", "/"), ("GET", "/api/tasks")
    for name in ("t1", "t2", "ts", "ts2"):
        assert title[name] in body[queue, OPERATOR]
        assert ids[name] in body[api_list, ADMIN]
    assert title["t1"] in body[queue, REVIEWER]
    assert title["t2"] in body[queue, REVIEWER_T2]
    assert title["ts"] in body[queue, SLACK_ONLY]
    assert ids["ts"] in body[api_list, SLACK_ONLY]
    assert ids["t1"] in body[api_list, AGENT]
    assert ids["t2"] in body[api_list, AGENT_2]
    assert tasks[ids["t1"]].secrets[1] in body[("GET", "/api/tasks/{task_id}"), REVIEWER]


def test_callers_are_who_they_say() -> None:
    # Guard the table's own arithmetic: nine callers, and each class names all of them.
    assert len(CALLERS) == 9 == len(set(CALLERS))
    for route in ROUTES:
        assert set(route.access) == set(CALLERS), route.key
        assert set(route.overrides) <= set(CALLERS), route.key


@pytest.mark.parametrize("path", ["/interactions", "/events"])
async def test_a_badly_signed_slack_request_is_a_401_not_a_500(tmp_path: Any, path: str) -> None:
    # slack-sdk reads the timestamp with int(): a missing or non-numeric one used to escape
    # the signature check as a ValueError (a 500 with a stack trace in the log).
    body = jsonlib.dumps({"type": "url_verification", "challenge": "c"}).encode()
    good = signed(body)
    attempts = {
        "no headers": {},
        "no timestamp": {"X-Slack-Signature": good["X-Slack-Signature"]},
        "a timestamp that is no number": {**good, "X-Slack-Request-Timestamp": "soon"},
        "a wrong signature": {**good, "X-Slack-Signature": "v0=" + "0" * 64},
    }
    with SlackStandIn() as slack:
        settings = matrix_settings(f"sqlite+aiosqlite:///{tmp_path}/slack.db", slack)
        async with running_app(settings) as (app, _admin):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                for why, headers in attempts.items():
                    resp = await http.post(
                        f"/api/channels/slack{path}",
                        content=body,
                        headers={"content-type": "application/json", **headers},
                    )
                    assert resp.status_code == 401, (why, resp.text)
                    assert resp.json()["error"] == "INVALID_SIGNATURE", why
                if path == "/events":
                    signed_ok = await http.post(
                        "/api/channels/slack/events",
                        content=body,
                        headers={"content-type": "application/json", **good},
                    )
                    assert signed_ok.json() == {"challenge": "c"}
