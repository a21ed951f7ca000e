"""Setup token, sessions, login throttling, agent keys and who may see what."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests._app_fixtures import make_settings, running_app

TASK = {
    "task": "Approve?",
    "payload": {},
    "payload_schema": {"type": "object"},
    "response_schema": {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
    },
    "timeout_seconds": 600,
}


@pytest.fixture
async def app_and_admin(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(make_settings(database_url)) as pair:
        yield pair


def anon(app: FastAPI, ip: str = "10.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 4000)), base_url="http://testserver"
    )


async def setup_operator(app: FastAPI) -> dict[str, Any]:
    async with anon(app) as c:
        resp = await c.post(
            "/api/setup/operator",
            json={
                "token": app.state.setup_token,
                "email": "Ops@Acme.com",
                "display_name": "Ops",
                "password": "correct horse battery",
            },
        )
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_setup_token_works_once(app_and_admin: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, _ = app_and_admin
    token = app.state.setup_token
    assert token
    me = await setup_operator(app)
    assert me["is_operator"] is True
    assert me["email"] == "ops@acme.com"
    async with anon(app) as c:
        again = await c.post(
            "/api/setup/operator",
            json={"token": token, "email": "x@y.io", "display_name": "X", "password": "x" * 12},
        )
    assert again.status_code in (403, 409)
    assert again.json()["error"] in ("INVALID_SETUP_TOKEN", "SETUP_ALREADY_DONE")


async def test_wrong_setup_token_is_refused(
    app_and_admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _ = app_and_admin
    async with anon(app) as c:
        resp = await c.post(
            "/api/setup/operator",
            json={"token": "nope", "email": "a@b.io", "display_name": "A", "password": "x" * 12},
        )
    assert resp.status_code == 403
    assert resp.json()["error"] == "INVALID_SETUP_TOKEN"


async def login(c: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await c.post("/api/auth/login", json={"email": email, "password": password})


async def test_login_me_logout_revokes_session(
    app_and_admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _ = app_and_admin
    await setup_operator(app)
    async with anon(app) as c:
        assert (await c.get("/api/auth/me")).status_code == 401
        resp = await login(c, "ops@acme.com", "correct horse battery")
        assert resp.status_code == 200, resp.text
        cookie = resp.cookies["ah_session"]
        assert "httponly" in resp.headers["set-cookie"].lower()
        me = (await c.get("/api/auth/me")).json()
        assert me["kind"] == "user"
        assert me["is_operator"] is True
        assert (await c.post("/api/auth/logout")).status_code == 204
    async with anon(app) as replay:
        replay.cookies.set("ah_session", cookie)
        # The cookie is still correctly signed, but its session was revoked server-side.
        assert (await replay.get("/api/auth/me")).status_code == 401
        replay.cookies.set("ah_session", cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
        assert (await replay.get("/api/auth/me")).status_code == 401


async def test_login_throttle_does_not_lock_out_the_right_password_elsewhere(
    app_and_admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _ = app_and_admin
    await setup_operator(app)
    async with anon(app, ip="10.9.9.9") as attacker:
        codes = [
            (await login(attacker, "ops@acme.com", f"guess-{i}")).status_code for i in range(8)
        ]
    assert codes[:5] == [401] * 5
    assert 429 in codes[5:]
    async with anon(app, ip="10.1.1.1") as owner:
        assert (await login(owner, "ops@acme.com", "correct horse battery")).status_code == 200


async def test_unknown_user_and_wrong_password_look_the_same(
    app_and_admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _ = app_and_admin
    await setup_operator(app)
    async with anon(app) as c:
        a = await login(c, "nobody@acme.com", "whatever1")
        b = await login(c, "ops@acme.com", "whatever1")
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


async def test_agent_key_scope(app_and_admin: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, admin = app_and_admin
    made = await admin.post("/api/admin/agent-keys", json={"name": "refund-bot"})
    assert made.status_code == 201
    key = made.json()["key"]
    theirs = (await admin.post("/api/tasks", json={**TASK, "idempotency_key": "admin-1"})).json()
    async with anon(app) as bot:
        bot.headers["Authorization"] = f"Bearer {key}"
        mine = await bot.post("/api/tasks", json={**TASK, "idempotency_key": "bot-1"})
        assert mine.status_code == 201
        mine_id = mine.json()["id"]
        assert (await bot.get(f"/api/tasks/{mine_id}")).status_code == 200
        assert (await bot.get(f"/api/tasks/{theirs['id']}")).status_code == 404
        listed = [t["id"] for t in (await bot.get("/api/tasks")).json()["items"]]
        assert listed == [mine_id]
        done = await bot.post(f"/api/tasks/{mine_id}/complete", json={"response": {"ok": True}})
        assert done.status_code == 403
        assert (await bot.get("/api/admin/users")).status_code == 403
        # Another owner's idempotency key is the bot's own new task: never a replay of
        # theirs, and no 409 telling the bot that the key is taken.
        reused = await bot.post("/api/tasks", json={**TASK, "idempotency_key": "admin-1"})
        assert reused.status_code == 201
        assert "idempotent-replayed" not in reused.headers
        assert reused.json()["id"] not in (theirs["id"], mine_id)
        assert (await admin.delete(f"/api/admin/agent-keys/{made.json()['id']}")).status_code == 204
        assert (await bot.get(f"/api/tasks/{mine_id}")).status_code == 401


async def test_reviewer_sees_and_answers_only_their_tasks(
    app_and_admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, admin = app_and_admin
    for email in ("alice@acme.com", "bob@acme.com"):
        resp = await admin.post(
            "/api/admin/users",
            json={"email": email, "display_name": email[:3], "password": "pass-word-1"},
        )
        assert resp.status_code == 201, resp.text
    for_alice = (
        await admin.post(
            "/api/tasks",
            json={**TASK, "idempotency_key": "a-1", "assign_to": {"email": "alice@acme.com"}},
        )
    ).json()
    assert for_alice["status"] == "assigned"
    async with anon(app) as bob:
        assert (await login(bob, "bob@acme.com", "pass-word-1")).status_code == 200
        assert (await bob.get("/api/tasks")).json()["items"] == []
        assert (await bob.get(f"/api/tasks/{for_alice['id']}")).status_code == 404
        refused = await bob.post(
            f"/api/tasks/{for_alice['id']}/complete", json={"response": {"ok": True}}
        )
        assert refused.status_code == 404
    async with anon(app) as alice:
        assert (await login(alice, "alice@acme.com", "pass-word-1")).status_code == 200
        items = (await alice.get("/api/tasks")).json()["items"]
        assert [t["id"] for t in items] == [for_alice["id"]]
        done = await alice.post(
            f"/api/tasks/{for_alice['id']}/complete", json={"response": {"ok": True}}
        )
        assert done.status_code == 200
        assert done.json()["completed_by_email"] == "alice@acme.com"
    audit = (await admin.get(f"/api/tasks/{for_alice['id']}/audit")).json()
    assert audit[-1]["actor_type"] == "user"
    assert audit[-1]["actor_label"] == "alice@acme.com"
    assert audit[-1]["from_status"] == "assigned"


async def test_last_operator_cannot_be_demoted(
    app_and_admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, admin = app_and_admin
    me = await setup_operator(app)
    resp = await admin.patch(f"/api/admin/users/{me['id']}", json={"is_operator": False})
    assert resp.status_code == 409
    assert resp.json()["error"] == "LAST_OPERATOR"
    assert (await admin.delete(f"/api/admin/users/{me['id']}")).status_code == 409


async def test_cookie_session_refuses_cross_site_writes(
    app_and_admin: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, admin = app_and_admin
    await setup_operator(app)
    task = (await admin.post("/api/tasks", json={**TASK, "idempotency_key": "csrf-1"})).json()
    async with anon(app) as browser:
        assert (await login(browser, "ops@acme.com", "correct horse battery")).status_code == 200
        evil = await browser.post(
            f"/api/tasks/{task['id']}/cancel", headers={"Origin": "https://evil.example"}
        )
        assert evil.status_code == 403
        assert evil.json()["error"] == "CSRF_FAILED"
        assert (await admin.get(f"/api/tasks/{task['id']}")).json()["status"] == "created"
        same = await browser.post(
            f"/api/tasks/{task['id']}/cancel", headers={"Origin": "http://testserver"}
        )
        assert same.status_code == 200
