"""Rate limits through the real app: sign-ins per account and per address, the setup,
handoff and one-click doors per address, and the client address behind trusted proxies.

The in-process app on a real SQLite file, each client with its own socket address
(``ASGITransport(client=...)``); the limits are the app's settings, made small.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from awaithumans.server.context import ServerContext
from awaithumans.server.db.types import utcnow
from awaithumans.server.notify.email.links import AnswerLink, answer_url
from awaithumans.server.services.handoff import handoff_url
from tests._app_fixtures import make_settings, running_app

OPS = {"email": "ops@acme.com", "password": "correct horse battery"}
PROXY = "10.0.0.2"


@asynccontextmanager
async def started(tmp_path: Path, **settings: object) -> AsyncIterator[FastAPI]:
    """The app with ``settings``; no operator yet."""
    url = f"sqlite+aiosqlite:///{tmp_path}/limits.db"
    async with running_app(make_settings(url, **settings)) as (app, _admin):
        yield app


def client(app: FastAPI, ip: str, **headers: str) -> httpx.AsyncClient:
    """A client whose socket peer is ``ip``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
        base_url="http://testserver",
        headers=headers,
    )


def ctx_of(app: FastAPI) -> ServerContext:
    ctx: ServerContext = app.state.ctx
    return ctx


async def add_operator(app: FastAPI) -> None:
    async with client(app, "192.0.2.250") as c:
        made = await c.post(
            "/api/setup/operator",
            json={"token": app.state.setup_token, "display_name": "Ops", **OPS},
        )
    assert made.status_code == 201, made.text


async def login(c: httpx.AsyncClient, password: str, email: str = OPS["email"]) -> int:
    return (
        await c.post("/api/auth/login", json={"email": email, "password": password})
    ).status_code


def assert_limited(resp: httpx.Response, most: int) -> int:
    """A 429 with a Retry-After of at most ``most`` seconds (and more than 0)."""
    assert resp.status_code == 429, resp.text
    wait = int(resp.headers["retry-after"])
    assert 0 < wait <= most
    if resp.headers["content-type"].startswith("application/json"):
        assert resp.json()["error"] == "RATE_LIMITED"
        assert (
            f"try again in {wait} seconds" in resp.json()["message"]
            or "minutes" in (resp.json()["message"])
        )
    assert "Traceback" not in resp.text
    return wait


# --- sign-in ----------------------------------------------------------------------------


async def test_failures_then_429_with_retry_after_and_other_addresses_unaffected(
    tmp_path: Path,
) -> None:
    async with started(tmp_path, login_limit_per_account_address="3/600") as app:
        await add_operator(app)
        async with client(app, "10.9.9.9") as attacker:
            assert [await login(attacker, f"guess-{i}") for i in range(3)] == [401] * 3
            refused = await attacker.post(
                "/api/auth/login", json={"email": OPS["email"], "password": "guess-3"}
            )
            # 3 per 600 s: one more attempt after 200 s.
            assert assert_limited(refused, 200) > 190
            # Refused before the password is looked at: even the right one.
            assert await login(attacker, OPS["password"]) == 429
        async with client(app, "10.1.1.1") as owner:
            assert await login(owner, OPS["password"]) == 200


async def test_the_account_is_limited_across_addresses_and_a_success_resets_it(
    tmp_path: Path,
) -> None:
    async with started(tmp_path, login_limit_per_account="4/3600") as app:
        await add_operator(app)
        async with client(app, "10.1.1.1") as usual:
            assert await login(usual, OPS["password"]) == 200
        for n in range(4):
            async with client(app, f"10.9.0.{n}") as spread:
                assert await login(spread, f"guess-{n}") == 401
        async with client(app, "10.9.0.200") as next_one:
            refused = await next_one.post(
                "/api/auth/login", json={"email": OPS["email"], "password": "guess"}
            )
            assert_limited(refused, 900)
            # Other accounts are not held back by this one's count.
            assert await login(next_one, "whatever", email="someone@acme.com") == 401
            # The owner's usual address still signs in, and that resets the account.
            async with client(app, "10.1.1.1") as usual:
                assert await login(usual, OPS["password"]) == 200
            assert await login(next_one, "guess-again") == 401


async def test_one_address_is_limited_across_accounts(tmp_path: Path) -> None:
    async with started(tmp_path, login_limit_per_address="3/600") as app:
        await add_operator(app)
        async with client(app, "10.7.7.7") as sprayer:
            codes = [await login(sprayer, "pw", email=f"u{n}@acme.com") for n in range(3)]
            assert codes == [401] * 3
            assert await login(sprayer, "pw", email="u4@acme.com") == 429
            assert await login(sprayer, OPS["password"]) == 429
        async with client(app, "10.7.7.8") as other:
            assert await login(other, OPS["password"]) == 200


async def test_parallel_guesses_cannot_outrun_the_limit(tmp_path: Path) -> None:
    async with started(tmp_path, login_limit_per_account_address="3/600") as app:
        await add_operator(app)
        async with client(app, "10.6.6.6") as burst:
            codes = await asyncio.gather(*(login(burst, f"guess-{i}") for i in range(12)))
    assert sorted(codes) == [401] * 3 + [429] * 9


async def test_the_sign_in_page_says_when_to_retry(tmp_path: Path) -> None:
    async with started(tmp_path, login_limit_per_account_address="2/600") as app:
        await add_operator(app)
        async with client(app, "10.5.5.5") as browser:

            async def submit(password: str) -> httpx.Response:
                page = await browser.get("/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                assert token is not None
                form = {"csrf_token": token.group(1), "email": OPS["email"]}
                return await browser.post("/login", data={**form, "password": password})

            assert [(await submit(f"guess-{i}")).status_code for i in range(2)] == [401, 401]
            page = await submit(OPS["password"])
            wait = assert_limited(page, 300)
            assert page.headers["content-type"].startswith("text/html")
            text = html.unescape(page.text)
            assert f"Too many failed sign-ins; try again in {wait} seconds" in text or (
                "Too many failed sign-ins; try again in 5 minutes" in text
            )
            assert 'value="ops@acme.com"' in page.text  # the form keeps what was typed
            assert "ah_session" not in page.headers.get("set-cookie", "")


# --- the client address behind proxies ----------------------------------------------------


async def test_a_trusted_proxys_forwarded_address_is_the_bucket(tmp_path: Path) -> None:
    limits = {"login_limit_per_account_address": "3/600", "trusted_proxies": PROXY}
    async with started(tmp_path, **limits) as app:
        await add_operator(app)
        async with client(app, PROXY, **{"X-Forwarded-For": "203.0.113.7"}) as first:
            assert [await login(first, f"guess-{i}") for i in range(3)] == [401] * 3
            assert await login(first, "guess-3") == 429
        # Another client behind the same proxy has its own count.
        async with client(app, PROXY, **{"X-Forwarded-For": "203.0.113.8"}) as second:
            assert await login(second, OPS["password"]) == 200
        # Entries the client wrote itself, left of what the proxy added, change nothing.
        for n in range(5):
            spoofed = {"X-Forwarded-For": f"198.51.100.{n}, {PROXY}, 203.0.113.7"}
            async with client(app, PROXY, **spoofed) as liar:
                assert await login(liar, OPS["password"]) == 429
        # A peer that is not a trusted proxy cannot name an address at all.
        for n in range(3):
            async with client(app, "10.0.0.3", **{"X-Forwarded-For": f"203.0.113.{n}"}) as c:
                assert await login(c, f"guess-{n}") == 401
        async with client(app, "10.0.0.3", **{"X-Forwarded-For": "203.0.113.99"}) as c:
            assert await login(c, OPS["password"]) == 429


async def test_without_trusted_proxies_the_header_is_ignored(tmp_path: Path) -> None:
    async with started(tmp_path, login_limit_per_account_address="3/600") as app:
        await add_operator(app)
        for n in range(3):
            async with client(app, PROXY, **{"X-Forwarded-For": f"203.0.113.{n}"}) as c:
                assert await login(c, f"guess-{n}") == 401
        async with client(app, PROXY, **{"X-Forwarded-For": "203.0.113.50"}) as c:
            assert await login(c, OPS["password"]) == 429
        async with client(app, "10.0.0.4") as elsewhere:
            assert await login(elsewhere, OPS["password"]) == 200


async def test_the_limit_log_names_the_forwarded_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limits = {"login_limit_per_address": "2/600", "trusted_proxies": PROXY}
    async with started(tmp_path, **limits) as app:
        await add_operator(app)
        async with client(app, PROXY, **{"X-Forwarded-For": "1.1.1.1, 203.0.113.7"}) as c:
            with caplog.at_level(logging.WARNING, logger="awaithumans.server.security"):
                assert [await login(c, "x", email=f"u{n}@acme.com") for n in range(3)] == [
                    401,
                    401,
                    429,
                ]
    lines = [r.getMessage() for r in caplog.records if r.name == "awaithumans.server.security"]
    assert lines == ["sign-in attempts from 203.0.113.7 reached the address's limit"]


async def test_a_spray_of_addresses_costs_bounded_memory(tmp_path: Path) -> None:
    limits = {"trusted_proxies": PROXY, "rate_limit_max_keys": 100}
    async with started(tmp_path, **limits) as app:
        ctx = ctx_of(app)
        for n in range(400):
            sprayed = {"X-Forwarded-For": f"203.0.{n // 256}.{n % 256}"}
            async with client(app, PROXY, **sprayed) as c:
                assert (await c.get("/handoff", params={"t": "x"})).status_code == 400
                if n % 4 == 0:
                    assert await login(c, "x", email=f"u{n}@acme.com") == 401
        assert ctx.door_limits.tracked_keys == 100
        # Pairs, accounts and addresses: at most 100 each (no success, no known address).
        assert ctx.login_throttle.tracked_keys == 300


# --- setup, handoff and one-click ---------------------------------------------------------


async def test_setup_is_limited_per_address(tmp_path: Path) -> None:
    async with started(tmp_path, setup_limit_per_address="3/600") as app:
        body = {"display_name": "Ops", **OPS}
        async with client(app, "10.4.4.4") as guesser:
            for n in range(2):
                wrong = await guesser.post("/api/setup/operator", json={**body, "token": f"t{n}"})
                assert wrong.status_code == 403
            # The page counts at the same door: it, too, tells a right token from a wrong one.
            assert (await guesser.get("/setup", params={"token": "t3"})).status_code == 400
            refused = await guesser.post(
                "/api/setup/operator", json={**body, "token": app.state.setup_token}
            )
            assert_limited(refused, 200)
            page = await guesser.get("/setup", params={"token": app.state.setup_token})
            assert_limited(page, 200)
            assert "Too many setup attempts from your address" in page.text
        async with client(app, "10.4.4.5") as owner:
            made = await owner.post(
                "/api/setup/operator", json={**body, "token": app.state.setup_token}
            )
            assert made.status_code == 201, made.text


async def reviewer_task(app: FastAPI, **task: Any) -> tuple[str, str]:
    """A reviewer and a task assigned to them: (user id, task id)."""
    async with client(app, "192.0.2.251") as c:
        c.headers["Authorization"] = (
            f"Bearer {app.state.ctx.settings.admin_api_token.get_secret_value()}"
        )
        made = await c.post(
            "/api/admin/users",
            json={"email": "rev@acme.com", "display_name": "Rev", "password": "reviewer pass 1"},
        )
        assert made.status_code == 201, made.text
        user_id = str(made.json()["id"])
        body = {
            "task": "Approve?",
            "idempotency_key": "limits-1",
            "payload": {},
            "payload_schema": {"type": "object"},
            "response_schema": {
                "type": "object",
                "properties": {"approved": {"type": "boolean"}},
                "required": ["approved"],
            },
            "timeout_seconds": 600,
            "assign_to": {"user_id": user_id},
            **task,
        }
        created = await c.post("/api/tasks", json=body)
        assert created.status_code == 201, created.text
        return user_id, str(created.json()["id"])


async def test_handoff_links_are_limited_per_address(tmp_path: Path) -> None:
    async with started(tmp_path, handoff_limit_per_address="3/600") as app:
        user_id, task_id = await reviewer_task(app)
        link = handoff_url(ctx_of(app).keyring, "", user_id, task_id, utcnow() + timedelta(hours=1))
        async with client(app, "10.3.3.3") as prober:
            for n in range(3):
                assert (await prober.get("/handoff", params={"t": f"bad{n}"})).status_code == 400
            refused = await prober.get(link)
            assert_limited(refused, 200)
            assert "Too many sign-in links opened from your address" in html.unescape(refused.text)
            assert "ah_session" not in refused.headers.get("set-cookie", "")
        async with client(app, "10.3.3.4") as reviewer:
            opened = await reviewer.get(link)
            assert opened.status_code == 303
            assert opened.headers["location"] == f"/task?id={task_id}"
            assert "ah_session" in opened.headers["set-cookie"]


async def test_one_click_links_are_limited_per_address(tmp_path: Path) -> None:
    limits = {"one_click_limit_per_address": "3/600", "email": {"transport": "logging"}}
    async with started(tmp_path, **limits) as app:
        user_id, task_id = await reviewer_task(app)
        ctx = ctx_of(app)
        expires = utcnow() + timedelta(hours=1)
        yes = answer_url(
            ctx.keyring, "", AnswerLink(user_id, task_id, "approved", True, 0, expires)
        )
        async with client(app, "10.2.2.5") as person:
            page = await person.get(yes)
            assert page.status_code == 200, page.text
            fields = dict(
                re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
            )
            form = {k: html.unescape(v) for k, v in fields.items()}
            cookies = person.cookies
        async with client(app, "10.2.2.2") as prober:
            path = "/api/channels/email/answer"
            assert (await prober.get(path, params={"t": "bad0"})).status_code == 400
            assert (await prober.get(path, params={"t": "bad1"})).status_code == 400
            assert (await prober.post(path, data={"t": "bad2"})).status_code == 400
            assert_limited(await prober.get(yes), 200)
            # Even a valid answer, with the page's CSRF token and cookie, is refused...
            prober.cookies = cookies
            refused = await prober.post(path, data=form)
            assert_limited(refused, 200)
            assert "Too many answer links opened from your address" in html.unescape(refused.text)
        # ...and nothing was answered.
        async with client(app, "192.0.2.251") as admin:
            admin.headers["Authorization"] = (
                f"Bearer {ctx.settings.admin_api_token.get_secret_value()}"  # type: ignore[union-attr]
            )
            state = (await admin.get(f"/api/tasks/{task_id}")).json()
        assert state["status"] not in ("completed", "submitted")
        async with client(app, "10.2.2.5") as person:
            person.cookies = cookies
            done = await person.post(path, data=form)
            assert done.status_code == 200, done.text
            assert "Answer recorded" in done.text
