"""Sessions end when they should: a password change (all but the one in use), "sign out
everywhere", an operator's action, a deactivation; and the cookies they ride on are
HttpOnly, SameSite=Lax and Secure behind https. Against the in-process app, real SQLite,
through the dashboard's forms with CSRF and the JSON API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from awaithumans.server.db.types import utcnow
from awaithumans.server.services.handoff import handoff_url
from tests.dashboard.test_admin_pages import (
    OPS_EMAIL,
    OPS_PASSWORD,
    TASK,
    Server,
    csrf_of,
    field_error,
    post_form,
    sign_in,
    started,
    user_form,
)

REV_EMAIL = "rev@acme.com"
REV_PASSWORD = "reviewer pass 1"


@pytest.fixture
async def server(tmp_path: object) -> AsyncIterator[Server]:
    async with started(f"sqlite+aiosqlite:///{tmp_path}/sessions.db") as s:
        yield s


async def add_reviewer(s: Server) -> str:
    made = await s.admin.post(
        "/api/admin/users",
        json={"email": REV_EMAIL, "display_name": "Rev", "password": REV_PASSWORD},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def signed_in(s: Server, email: str, password: str) -> httpx.AsyncClient:
    client = s.browser()
    resp = await sign_in(client, email, password)
    assert resp.status_code == 303, resp.text
    return client


async def is_signed_in(client: httpx.AsyncClient) -> bool:
    status = (await client.get("/api/auth/me")).status_code
    assert status in (200, 401)
    return status == 200


async def test_changing_your_password_ends_your_other_sessions_only(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    here = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    laptop = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    await add_reviewer(server)
    someone_else = await signed_in(server, REV_EMAIL, REV_PASSWORD)
    page = await here.get("/account")
    assert page.status_code == 200
    assert "Change password" in page.text
    assert "Sign out everywhere" in page.text
    assert "You are signed in 2 times" in page.text

    # Refusals change nothing: no CSRF token, a wrong current password, a mismatch, too short.
    form = {
        "current_password": OPS_PASSWORD,
        "new_password": "a brand new secret",
        "new_password_confirm": "a brand new secret",
    }
    refused = await here.post("/account/password", data=form)
    assert refused.status_code == 403
    assert "This form expired" in refused.text
    wrong = await post_form(
        here, "/account", "/account/password", {**form, "current_password": "guess"}
    )
    assert wrong.status_code == 403
    assert field_error(wrong.text, "current_password") == "That is not your current password."
    differ = await post_form(
        here, "/account", "/account/password", {**form, "new_password_confirm": "other"}
    )
    assert differ.status_code == 400
    assert field_error(differ.text, "new_password_confirm") == "The two new passwords differ."
    short = {**form, "new_password": "short", "new_password_confirm": "short"}
    weak = await post_form(here, "/account", "/account/password", short)
    assert weak.status_code == 422
    assert field_error(weak.text, "new_password")
    assert "Traceback" not in weak.text
    assert await is_signed_in(laptop)
    async with server.browser() as fresh:
        assert (await sign_in(fresh, OPS_EMAIL, OPS_PASSWORD)).status_code == 303

    with caplog.at_level(logging.INFO, logger="awaithumans.server"):
        done = await post_form(here, "/account", "/account/password", form)
    assert done.status_code == 303
    assert done.headers["location"] == "/account?done=password"
    assert await is_signed_in(here)  # the session that changed it stays
    assert not await is_signed_in(laptop)
    assert await is_signed_in(someone_else)  # another person's sessions are not touched
    # Two other sessions of Ops were live: the laptop and the fresh sign-in above.
    assert f"sessions of {server.ops['id']} ended (2): password changed" in caplog.text
    shown = await here.get("/account?done=password")
    assert "Password changed. Your other sessions were signed out." in shown.text
    assert "You are signed in 1 time" in shown.text
    async with server.browser() as fresh:
        assert (await sign_in(fresh, OPS_EMAIL, OPS_PASSWORD)).status_code == 401
        assert (await sign_in(fresh, OPS_EMAIL, "a brand new secret")).status_code == 303
    for client in (here, laptop, someone_else):
        await client.aclose()


async def test_wrong_current_passwords_are_throttled(server: Server) -> None:
    here = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    form = {"current_password": "guess", "new_password": "x" * 12, "new_password_confirm": "x" * 12}
    statuses = []
    for _ in range(6):
        statuses.append((await post_form(here, "/account", "/account/password", form)).status_code)
    assert statuses == [403] * 5 + [429]
    assert await is_signed_in(here)
    await here.aclose()


async def test_sign_out_everywhere_from_your_own_page(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    here = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    phone = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    await add_reviewer(server)
    other = await signed_in(server, REV_EMAIL, REV_PASSWORD)
    menu = await here.get("/")
    assert 'href="/account"' in menu.text  # the name in the top bar leads to the page

    refused = await here.post("/account/sign-out", data={})
    assert refused.status_code == 403
    assert await is_signed_in(phone)
    with caplog.at_level(logging.INFO, logger="awaithumans.server"):
        out = await post_form(here, "/account", "/account/sign-out", {})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert not await is_signed_in(here)
    assert not await is_signed_in(phone)
    assert await is_signed_in(other)
    assert f"sessions of {server.ops['id']} ended (2): signed out everywhere" in caplog.text
    # Anonymous now: the page and its forms send to sign-in, back to the page.
    assert (await here.get("/account")).headers["location"] == "/login?next=%2Faccount"
    again = await here.post("/account/sign-out", data={})
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=/account"
    for client in (here, phone, other):
        await client.aclose()


async def test_an_operator_signs_a_user_out_everywhere(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    rev_id = await add_reviewer(server)
    desk = await signed_in(server, REV_EMAIL, REV_PASSWORD)
    home = await signed_in(server, REV_EMAIL, REV_PASSWORD)
    ops = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    page = await ops.get(f"/users/{rev_id}")
    assert f'action="/users/{rev_id}/sign-out"' in page.text

    # A reviewer cannot, even with a valid CSRF token; nor can a post without one.
    token = csrf_of((await desk.get("/account")).text)
    denied = await desk.post(f"/users/{server.ops['id']}/sign-out", data={"csrf_token": token})
    assert denied.status_code == 403
    assert (await ops.post(f"/users/{rev_id}/sign-out", data={})).status_code == 403
    assert await is_signed_in(desk)
    assert await is_signed_in(ops)
    missing = await post_form(ops, "/users", "/users/usr_nobody/sign-out", {})
    assert missing.status_code == 404

    with caplog.at_level(logging.INFO, logger="awaithumans.server"):
        done = await post_form(ops, f"/users/{rev_id}", f"/users/{rev_id}/sign-out", {})
    assert done.status_code == 303
    assert done.headers["location"] == f"/users/{rev_id}?done=signed-out"
    assert not await is_signed_in(desk)
    assert not await is_signed_in(home)
    assert await is_signed_in(ops)
    assert f"sessions of {rev_id} ended (2): by operator {server.ops['id']}" in caplog.text
    shown = await ops.get(f"/users/{rev_id}?done=signed-out")
    assert "Signed out everywhere" in shown.text
    # They can sign in again: ending sessions is not deactivating.
    async with server.browser() as back:
        assert (await sign_in(back, REV_EMAIL, REV_PASSWORD)).status_code == 303
    for client in (desk, home, ops):
        await client.aclose()


async def test_a_password_set_by_an_operator_ends_that_users_sessions(server: Server) -> None:
    rev_id = await add_reviewer(server)
    rev = await signed_in(server, REV_EMAIL, REV_PASSWORD)
    ops = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    ops_elsewhere = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    users = await server.users()

    form = user_form(users["Rev"], password="set by the operator")
    saved = await post_form(ops, f"/users/{rev_id}", f"/users/{rev_id}", form)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/users?done=saved-signed-out"
    assert not await is_signed_in(rev)
    assert await is_signed_in(ops)
    assert await is_signed_in(ops_elsewhere)
    # Another field only: nobody is signed out.
    rev = await signed_in(server, REV_EMAIL, "set by the operator")
    renamed = user_form(users["Rev"], display_name="Reva")
    saved = await post_form(ops, f"/users/{rev_id}", f"/users/{rev_id}", renamed)
    assert saved.headers["location"] == "/users?done=saved"
    assert await is_signed_in(rev)

    # The operator's own password, from the Users page: the session doing it stays.
    own = user_form(users["Ops"], password="the operator's new one")
    uid = server.ops["id"]
    saved = await post_form(ops, f"/users/{uid}", f"/users/{uid}", own)
    assert saved.status_code == 303
    assert await is_signed_in(ops)
    assert not await is_signed_in(ops_elsewhere)
    for client in (rev, ops, ops_elsewhere):
        await client.aclose()


async def test_the_json_api_ends_sessions_too(server: Server) -> None:
    rev_id = await add_reviewer(server)
    rev = await signed_in(server, REV_EMAIL, REV_PASSWORD)
    changed = await server.admin.patch(
        f"/api/admin/users/{rev_id}", json={"password": "changed over the api"}
    )
    assert changed.status_code == 200, changed.text
    assert not await is_signed_in(rev)

    # Deactivating through the API ends sessions as the dashboard's button does, so
    # reactivating does not bring an old (maybe stolen) session back to life.
    rev = await signed_in(server, REV_EMAIL, "changed over the api")
    assert (await server.admin.delete(f"/api/admin/users/{rev_id}")).status_code == 200
    back = await server.admin.patch(f"/api/admin/users/{rev_id}", json={"is_active": True})
    assert back.status_code == 200
    assert back.json()["is_active"] is True
    assert not await is_signed_in(rev)

    # An operator changing their own password through the API with their session keeps it.
    ops = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    ops_elsewhere = await signed_in(server, OPS_EMAIL, OPS_PASSWORD)
    mine = await ops.patch(
        f"/api/admin/users/{server.ops['id']}", json={"password": "ops via the api"}
    )
    assert mine.status_code == 200, mine.text
    assert await is_signed_in(ops)
    assert not await is_signed_in(ops_elsewhere)
    for client in (rev, ops, ops_elsewhere):
        await client.aclose()


async def test_a_handoff_session_cannot_manage_the_account_but_is_ended(server: Server) -> None:
    rev_id = await add_reviewer(server)
    task = await server.admin.post(
        "/api/tasks", json={**TASK, "assign_to": {"user_id": rev_id}, "idempotency_key": "ho-1"}
    )
    assert task.status_code == 201, task.text
    ctx = server.app.state.ctx
    link = handoff_url(ctx.keyring, "", rev_id, task.json()["id"], utcnow() + timedelta(hours=1))
    async with server.browser() as linked:
        opened = await linked.get(link)
        assert opened.status_code == 303
        assert await is_signed_in(linked)
        page = await linked.get("/account")
        assert page.status_code == 403
        assert "opens its one task only" in page.text
        assert 'href="/account"' not in page.text
        refused = await linked.post("/account/sign-out", data={"csrf_token": csrf_of(page.text)})
        assert refused.status_code == 403
        assert await is_signed_in(linked)
        # Signing out everywhere from a real session ends the link's session too.
        rev = await signed_in(server, REV_EMAIL, REV_PASSWORD)
        assert (await post_form(rev, "/account", "/account/sign-out", {})).status_code == 303
        assert not await is_signed_in(linked)
        await rev.aclose()


def cookie_attributes(response: httpx.Response, name: str) -> set[str]:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return {part.strip().lower() for part in header.split(";")[1:]}
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


@pytest.mark.parametrize("public_url", ["https://reviews.acme.com", "http://testserver"])
async def test_session_and_handoff_cookies(tmp_path: object, public_url: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cookies.db"
    async with started(url, public_url=public_url) as s:
        rev_id = await add_reviewer(s)
        task = await s.admin.post(
            "/api/tasks", json={**TASK, "assign_to": {"user_id": rev_id}, "idempotency_key": "c"}
        )
        link = handoff_url(
            s.app.state.ctx.keyring, "", rev_id, task.json()["id"], utcnow() + timedelta(hours=1)
        )

        def browser() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=httpx.ASGITransport(app=s.app), base_url="https://testserver"
            )

        async with browser() as by_password, browser() as by_link:
            responses = [
                await sign_in(by_password, REV_EMAIL, REV_PASSWORD),
                await by_link.get(link),
            ]
        for response in responses:
            assert response.status_code == 303
            attributes = cookie_attributes(response, "ah_session")
            assert {"httponly", "samesite=lax", "path=/"} <= attributes
            assert ("secure" in attributes) is public_url.startswith("https://")
