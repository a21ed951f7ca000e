"""Operator pages (/users, /settings) against the in-process app, through forms with CSRF."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from awaithumans.server.db.engine import current_revision
from awaithumans.server.version import __version__
from tests._app_fixtures import make_settings, running_app

OPS_EMAIL = "ops@acme.com"
OPS_PASSWORD = "correct horse battery"
LAST_OPERATOR = "This is the last active operator; promote someone else first."
TASK = {
    "task": "Approve?",
    "idempotency_key": "admin-pages-1",
    "payload": {},
    "payload_schema": {"type": "object"},
    "response_schema": {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
    },
    "timeout_seconds": 600,
}


@dataclass
class Server:
    app: FastAPI
    admin: httpx.AsyncClient  # bearer admin token: reads state through the JSON API
    ops: dict[str, Any]  # the first operator

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )

    async def users(self) -> dict[str, dict[str, Any]]:
        resp = await self.admin.get("/api/admin/users")
        assert resp.status_code == 200
        return {u["display_name"]: u for u in resp.json()}


@asynccontextmanager
async def started(url: str, **settings: object) -> AsyncIterator[Server]:
    """The in-process app with its first operator (signed up through the setup token)."""
    async with running_app(make_settings(url, **settings)) as (app, admin):
        made = await admin.post(
            "/api/setup/operator",
            json={
                "token": app.state.setup_token,
                "email": OPS_EMAIL,
                "display_name": "Ops",
                "password": OPS_PASSWORD,
            },
        )
        assert made.status_code == 201, made.text
        yield Server(app, admin, made.json())


@pytest.fixture
async def server(tmp_path: object) -> AsyncIterator[Server]:
    async with started(f"sqlite+aiosqlite:///{tmp_path}/admin.db") as s:
        yield s


@pytest.fixture
async def server_any_db(database_url: str) -> AsyncIterator[Server]:
    """On SQLite and on PostgreSQL."""
    async with started(database_url) as s:
        yield s


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "page has no CSRF field"
    return found.group(1)


def field_error(page: str, field_id: str) -> str | None:
    """The error text shown for ``field_id``, checking the input points at it."""
    found = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', page)
    if found is None:
        return None
    tag = re.search(rf'<input id="{field_id}"[^>]*>', page)
    assert tag is not None
    assert f"{field_id}-error" in tag.group(0), "error not linked with aria-describedby"
    assert 'aria-invalid="true"' in tag.group(0)
    return html.unescape(found.group(1))


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str, *, next: str = "/"
) -> httpx.Response:
    page = await client.get(f"/login?next={next}")
    return await client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "email": email, "password": password, "next": next},
    )


@asynccontextmanager
async def operator_browser(s: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with s.browser() as client:
        resp = await sign_in(client, OPS_EMAIL, OPS_PASSWORD)
        assert resp.status_code == 303, resp.text
        yield client


async def post_form(
    client: httpx.AsyncClient, page_url: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Open ``page_url`` (for its CSRF token) and submit ``data`` to ``action``."""
    page = await client.get(page_url)
    assert page.status_code == 200, page.text
    return await client.post(action, data={"csrf_token": csrf_of(page.text), **data})


async def add_user(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    return await post_form(client, "/users", "/users", fields)


def user_form(u: dict[str, Any], **changes: str | None) -> dict[str, str]:
    """The edit form as the browser would submit it, with ``changes`` applied."""
    values: dict[str, str | None] = {
        "display_name": u["display_name"],
        "email": u["email"] or "",
        "slack_user_id": u.get("slack_user_id") or "",
        "is_operator": "1" if u["is_operator"] else None,
        "password": "",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


# -- access --------------------------------------------------------------------------------


async def test_anonymous_visitors_are_sent_to_login(server: Server) -> None:
    async with server.browser() as client:
        for path in ("/users", "/settings", f"/users/{server.ops['id']}"):
            resp = await client.get(path)
            assert resp.status_code == 303
            assert resp.headers["location"].startswith("/login?next=%2F")
        # A form post goes to login too, back to the page the form lives on.
        resp = await client.post("/users", data={"display_name": "X", "email": "x@acme.com"})
        assert resp.status_code == 303
        assert resp.headers["location"] == "/login?next=%2Fusers"
        resp = await client.post(f"/users/{server.ops['id']}/deactivate")
        assert resp.headers["location"] == f"/login?next=%2Fusers%2F{server.ops['id']}"
    assert set(await server.users()) == {"Ops"}


async def test_reviewers_get_a_friendly_403(server: Server) -> None:
    made = await server.admin.post(
        "/api/admin/users",
        json={"email": "rev@acme.com", "display_name": "Rev", "password": "reviewer pass 1"},
    )
    assert made.status_code == 201
    async with server.browser() as client:
        assert (await sign_in(client, "rev@acme.com", "reviewer pass 1")).status_code == 303
        for path in ("/users", "/settings", f"/users/{server.ops['id']}"):
            resp = await client.get(path)
            assert resp.status_code == 403
            assert resp.headers["content-type"].startswith("text/html")
            assert "Operators only" in resp.text
        # Even with a valid CSRF token (taken from a page they can see), writes are refused.
        token = csrf_of((await client.get("/users")).text)
        resp = await client.post("/settings/agent-keys", data={"csrf_token": token, "name": "k"})
        assert resp.status_code == 403
        resp = await client.post(
            "/users",
            data={"csrf_token": token, "display_name": "Sneaky", "email": "s@acme.com"},
        )
        assert resp.status_code == 403
    assert set(await server.users()) == {"Ops", "Rev"}
    assert (await server.admin.get("/api/admin/agent-keys")).json() == []


# -- users ---------------------------------------------------------------------------------


async def test_add_password_and_slack_only_reviewers(server: Server) -> None:
    async with operator_browser(server) as client:
        resp = await add_user(
            client,
            display_name="Rita Reviewer",
            email="Rita@Acme.com",
            password="rita's long password",
        )
        assert resp.status_code == 303
        assert resp.headers["location"] == "/users?done=added"
        resp = await add_user(client, display_name="Sam Slack", slack_user_id="u012ab3cd")
        assert resp.status_code == 303
        page = await client.get("/users?done=added")
    assert "User added." in page.text
    assert "Rita Reviewer" in page.text
    assert "rita@acme.com" in page.text
    assert "Sam Slack" in page.text
    assert "U012AB3CD" in page.text
    assert "Slack-only" in page.text
    users = await server.users()
    assert users["Rita Reviewer"]["email"] == "rita@acme.com"
    assert users["Rita Reviewer"]["has_password"] is True
    assert users["Rita Reviewer"]["is_operator"] is False
    assert users["Sam Slack"]["email"] is None
    assert users["Sam Slack"]["has_password"] is False
    assert users["Sam Slack"]["slack_user_id"] == "U012AB3CD"
    # The new reviewer signs in through the login page.
    async with server.browser() as rita:
        resp = await sign_in(rita, "rita@acme.com", "rita's long password")
        assert resp.status_code == 303
        me = await rita.get("/api/auth/me")
        assert me.json()["email"] == "rita@acme.com"


async def test_add_user_form_errors_are_shown_at_their_fields(server: Server) -> None:
    async with operator_browser(server) as client:
        resp = await add_user(client, display_name="", email="", slack_user_id="")
        assert resp.status_code == 400
        assert field_error(resp.text, "display_name") == "Enter the name people will see."
        assert "email or" not in (field_error(resp.text, "display_name") or "")
        assert "Slack member id" in (field_error(resp.text, "email") or "")
        resp = await add_user(
            client, display_name="Bad", email="not-an-email", slack_user_id="nope", password="x"
        )
        assert resp.status_code == 400
        assert "name@example.com" in (field_error(resp.text, "email") or "")
        assert "U012AB3CD" in (field_error(resp.text, "slack_user_id") or "")
        assert "at least 8" in (field_error(resp.text, "password") or "")
        # What was typed is kept (except the password), the first bad field gets focus.
        assert 'value="not-an-email"' in resp.text
        assert re.search(r'<input id="email"[^>]*autofocus', resp.text)
        resp = await add_user(
            client, display_name="Pat", slack_user_id="U0PAT", password="a fine password"
        )
        assert resp.status_code == 400
        assert "needs an email" in (field_error(resp.text, "password") or "")
        assert "a fine password" not in resp.text
    assert set(await server.users()) == {"Ops"}


async def test_edit_display_name_and_fields(server: Server) -> None:
    made = await server.admin.post(
        "/api/admin/users", json={"email": "ed@acme.com", "display_name": "Ed"}
    )
    ed = made.json()
    async with operator_browser(server) as client:
        page = await client.get(f"/users/{ed['id']}")
        assert page.status_code == 200
        assert 'value="ed@acme.com"' in page.text
        resp = await client.post(
            f"/users/{ed['id']}",
            data={
                "csrf_token": csrf_of(page.text),
                **user_form(ed, display_name="Edward", slack_user_id="W0ED"),
            },
        )
        assert resp.status_code == 303
        assert resp.headers["location"] == "/users?done=saved"
        assert "Changes saved." in (await client.get("/users?done=saved")).text
        # Set a password on the edit page: Ed can now sign in.
        resp = await post_form(
            client,
            f"/users/{ed['id']}",
            f"/users/{ed['id']}",
            user_form(
                {**ed, "display_name": "Edward", "slack_user_id": "W0ED"},
                password="edward's password",
            ),
        )
        assert resp.status_code == 303
    users = await server.users()
    assert users["Edward"]["slack_user_id"] == "W0ED"
    assert users["Edward"]["email"] == "ed@acme.com"
    assert users["Edward"]["has_password"] is True
    async with server.browser() as ed_client:
        assert (await sign_in(ed_client, "ed@acme.com", "edward's password")).status_code == 303
    async with operator_browser(server) as client:
        assert (await client.get("/users/usr_nope")).status_code == 404


async def test_duplicate_email_is_a_field_error_and_changes_nothing(server: Server) -> None:
    other = (
        await server.admin.post(
            "/api/admin/users", json={"email": "taken@acme.com", "display_name": "Taken"}
        )
    ).json()
    async with operator_browser(server) as client:
        resp = await add_user(client, display_name="Dup", email="TAKEN@acme.com")
        assert resp.status_code == 409
        assert field_error(resp.text, "email") == "Another user already has this email."
        assert 'value="Dup"' in resp.text
        resp = await post_form(
            client,
            f"/users/{other['id']}",
            f"/users/{other['id']}",
            user_form(other, display_name="Renamed", email=OPS_EMAIL),
        )
        assert resp.status_code == 409
        assert field_error(resp.text, "email") == "Another user already has this email."
    users = await server.users()
    assert set(users) == {"Ops", "Taken"}
    assert users["Taken"]["email"] == "taken@acme.com"


async def test_last_operator_cannot_be_demoted_or_deactivated(server_any_db: Server) -> None:
    s = server_any_db
    ops = s.ops
    async with operator_browser(s) as client:
        page = await client.get(f"/users/{ops['id']}")
        assert "promote someone else" in page.text  # warned before trying
        resp = await post_form(
            client, f"/users/{ops['id']}", f"/users/{ops['id']}", user_form(ops, is_operator=None)
        )
        assert resp.status_code == 409
        assert LAST_OPERATOR in resp.text
        assert field_error(resp.text, "is_operator") == LAST_OPERATOR
        resp = await post_form(client, f"/users/{ops['id']}", f"/users/{ops['id']}/deactivate", {})
        assert resp.status_code == 409
        assert LAST_OPERATOR in resp.text
        assert (await client.get("/users")).status_code == 200  # still signed in, still operator
    me = (await s.users())["Ops"]
    assert me["is_operator"] is True
    assert me["is_active"] is True


async def test_with_a_second_operator_demotion_works(server: Server) -> None:
    async with operator_browser(server) as client:
        resp = await add_user(
            client,
            display_name="Second",
            email="second@acme.com",
            password="second password",
            is_operator="1",
        )
        assert resp.status_code == 303
        assert (await server.users())["Second"]["is_operator"] is True
        # Demoting yourself works now, and sends you away from the operator pages.
        ops = server.ops
        resp = await post_form(
            client, f"/users/{ops['id']}", f"/users/{ops['id']}", user_form(ops, is_operator=None)
        )
        assert resp.status_code == 303
        assert resp.headers["location"] == "/"
        assert (await client.get("/users")).status_code == 403
    users = await server.users()
    assert users["Ops"]["is_operator"] is False
    # Second is now the last operator: they cannot demote themselves.
    async with server.browser() as second:
        assert (await sign_in(second, "second@acme.com", "second password")).status_code == 303
        sid = users["Second"]["id"]
        resp = await post_form(
            second, f"/users/{sid}", f"/users/{sid}", user_form(users["Second"], is_operator=None)
        )
        assert resp.status_code == 409
        assert LAST_OPERATOR in resp.text


async def test_deactivated_user_cannot_sign_in(server: Server) -> None:
    made = await server.admin.post(
        "/api/admin/users",
        json={"email": "gone@acme.com", "display_name": "Gone", "password": "gone password"},
    )
    gone = made.json()
    async with server.browser() as victim:
        assert (await sign_in(victim, "gone@acme.com", "gone password")).status_code == 303
        async with operator_browser(server) as client:
            resp = await post_form(
                client, f"/users/{gone['id']}", f"/users/{gone['id']}/deactivate", {}
            )
            assert resp.status_code == 303
            assert resp.headers["location"] == f"/users/{gone['id']}?done=deactivated"
            page = await client.get(resp.headers["location"])
            assert "deactivated" in page.text
            assert "Reactivate user" in page.text
            listing = await client.get("/users")
            assert re.search(r"Gone</a>.*?deactivated", listing.text, re.S)
            # The open session is over, and a new sign-in is refused.
            assert (await victim.get("/api/auth/me")).status_code == 401
            assert (await sign_in(victim, "gone@acme.com", "gone password")).status_code == 401
            resp = await post_form(
                client, f"/users/{gone['id']}", f"/users/{gone['id']}/reactivate", {}
            )
            assert resp.status_code == 303
        assert (await sign_in(victim, "gone@acme.com", "gone password")).status_code == 303
    assert (await server.users())["Gone"]["is_active"] is True


async def test_user_text_is_escaped(server: Server) -> None:
    await server.admin.post(
        "/api/admin/users",
        json={"email": "x@acme.com", "display_name": '<script>alert("x")</script>'},
    )
    async with operator_browser(server) as client:
        page = await client.get("/users")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert" in page.text


# -- settings ------------------------------------------------------------------------------


async def test_settings_shows_server_status(server_any_db: Server) -> None:
    s = server_any_db
    async with operator_browser(s) as client:
        page = await client.get("/settings")
    assert page.status_code == 200
    text = page.text
    backend = s.app.state.ctx.engine.dialect.name
    assert backend in ("sqlite", "postgresql")
    assert f"({backend})" in text
    assert "reachable" in text
    revision = await current_revision(s.app.state.ctx.engine)
    assert revision
    assert f"<code>{revision}</code>" in text
    assert __version__ in text
    assert "http://testserver" in text  # public URL
    assert "Webhooks" in text
    assert "AWAITHUMANS_SLACK_BOT_TOKEN" in text
    assert "AWAITHUMANS_SLACK_SIGNING_SECRET" in text
    assert "Not configured yet." in text  # email
    assert "awaithumans webhook-secret" in text
    assert "whsec_" not in text  # the secret itself is never shown
    assert "Waiting polls" in text


async def test_agent_key_is_shown_once_works_and_can_be_revoked(server_any_db: Server) -> None:
    s = server_any_db
    async with operator_browser(s) as client:
        resp = await post_form(client, "/settings", "/settings/agent-keys", {"name": "billing-bot"})
        assert resp.status_code == 201
        assert resp.headers["cache-control"] == "no-store"
        assert "will not be shown again" in resp.text
        found = re.search(r'<pre class="secret"[^>]*>([^<]+)</pre>', resp.text)
        assert found
        key = html.unescape(found.group(1)).strip()
        later = await client.get("/settings")
        assert key not in later.text  # shown once
        assert "billing-bot" in later.text
        assert key not in str(resp.headers)

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=s.app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        ) as bot:
            made = await bot.post("/api/tasks", json=TASK)
            assert made.status_code == 201, made.text

            keys = (await s.admin.get("/api/admin/agent-keys")).json()
            assert [k["name"] for k in keys] == ["billing-bot"]
            resp = await post_form(
                client, "/settings", f"/settings/agent-keys/{keys[0]['id']}/revoke", {}
            )
            assert resp.status_code == 303
            assert resp.headers["location"] == "/settings?done=revoked"
            assert "revoked" in (await client.get("/settings?done=revoked")).text
            gone = await bot.post("/api/tasks", json={**TASK, "idempotency_key": "after"})
            assert gone.status_code == 401


async def test_agent_key_needs_a_name(server: Server) -> None:
    async with operator_browser(server) as client:
        resp = await post_form(client, "/settings", "/settings/agent-keys", {"name": "  "})
    assert resp.status_code == 400
    assert "Name the key" in (field_error(resp.text, "key-name") or "")
    assert (await server.admin.get("/api/admin/agent-keys")).json() == []


# -- CSRF, headers -------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "forged"])
async def test_every_post_needs_csrf(server: Server, token: str | None) -> None:
    reviewer = (
        await server.admin.post(
            "/api/admin/users", json={"email": "r@acme.com", "display_name": "R"}
        )
    ).json()
    key = (await server.admin.post("/api/admin/agent-keys", json={"name": "k"})).json()
    second = await server.admin.post(
        "/api/admin/users",
        json={"email": "op2@acme.com", "display_name": "Op2", "is_operator": True},
    )
    assert second.status_code == 201
    before_users = await server.users()
    before_keys = (await server.admin.get("/api/admin/agent-keys")).json()
    rid = reviewer["id"]
    posts: list[tuple[str, dict[str, str]]] = [
        ("/users", {"display_name": "New", "email": "new@acme.com"}),
        (f"/users/{rid}", user_form(reviewer, display_name="Changed", is_operator="1")),
        (f"/users/{rid}/deactivate", {}),
        (f"/users/{server.ops['id']}", user_form(server.ops, is_operator=None)),
        ("/settings/agent-keys", {"name": "sneaky"}),
        (f"/settings/agent-keys/{key['id']}/revoke", {}),
    ]
    async with operator_browser(server) as client:
        for action, data in posts:
            body = dict(data)
            if token is not None:
                body["csrf_token"] = token
            resp = await client.post(action, data=body)
            assert resp.status_code == 403, action
            assert "expired" in resp.text
        # Reactivation too (on a deactivated user).
        await server.admin.delete(f"/api/admin/users/{rid}")
        resp = await client.post(f"/users/{rid}/reactivate", data={})
        assert resp.status_code == 403
    after = await server.users()
    assert after["R"]["is_active"] is False
    after["R"]["is_active"] = True
    assert after == before_users
    assert (await server.admin.get("/api/admin/agent-keys")).json() == before_keys


async def test_pages_have_no_inline_code_and_label_every_input(server: Server) -> None:
    async with operator_browser(server) as client:
        pages = [
            await client.get("/users"),
            await client.get(f"/users/{server.ops['id']}"),
            await client.get("/settings"),
            await add_user(client, display_name=""),  # with errors
        ]
    for page in pages:
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "<style" not in page.text
        assert " style=" not in page.text
        assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None
        assert "/static/admin.css" in page.text
        for tag in re.findall(r"<input [^>]*>", page.text):
            if 'type="hidden"' in tag:
                continue
            input_id = re.search(r'id="([^"]+)"', tag)
            assert input_id, tag
            assert f'for="{input_id.group(1)}"' in page.text, tag
