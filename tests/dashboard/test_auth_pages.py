"""Setup, sign-in and sign-out pages, with CSRF, against the in-process app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests._app_fixtures import make_settings, running_app


@pytest.fixture
async def app(tmp_path: object) -> AsyncIterator[FastAPI]:
    url = f"sqlite+aiosqlite:///{tmp_path}/d.db"
    async with running_app(make_settings(url)) as (app, _admin):
        yield app


def browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


async def do_setup(app: FastAPI, client: httpx.AsyncClient) -> httpx.Response:
    token = app.state.setup_token
    page = await client.get(f"/setup?token={token}")
    assert page.status_code == 200
    return await client.post(
        "/setup",
        data={
            "csrf_token": csrf_of(page.text),
            "token": token,
            "email": "ops@acme.com",
            "display_name": "Ops",
            "password": "correct horse battery",
            "password_confirm": "correct horse battery",
        },
    )


async def test_setup_creates_operator_signs_in_and_burns_the_link(app: FastAPI) -> None:
    async with browser(app) as client:
        done = await do_setup(app, client)
        assert done.status_code == 303
        assert done.headers["location"] == "/"
        me = await client.get("/api/auth/me")
        assert me.json()["email"] == "ops@acme.com"
        again = await client.get(f"/setup?token={app.state.setup_token}")
        assert again.status_code == 400
        assert "already done" in again.text
        assert "Traceback" not in again.text


async def test_wrong_setup_token_gets_a_clear_page(app: FastAPI) -> None:
    async with browser(app) as client:
        page = await client.get("/setup?token=wrong")
    assert page.status_code == 400
    assert "not valid" in page.text
    assert page.headers["content-type"].startswith("text/html")


async def test_form_without_csrf_is_refused_and_changes_nothing(app: FastAPI) -> None:
    async with browser(app) as client:
        resp = await client.post(
            "/setup",
            data={
                "token": app.state.setup_token,
                "email": "evil@x.io",
                "display_name": "Evil",
                "password": "p" * 12,
                "password_confirm": "p" * 12,
            },
        )
        assert resp.status_code == 403
        page = await client.get(f"/setup?token={app.state.setup_token}")
        assert page.status_code == 200  # the link still works: nothing was created


async def test_login_logout_and_next_redirect(app: FastAPI) -> None:
    async with browser(app) as setup_client:
        await do_setup(app, setup_client)
    async with browser(app) as client:
        page = await client.get("/login?next=/audit")
        bad = await client.post(
            "/login",
            data={
                "csrf_token": csrf_of(page.text),
                "email": "ops@acme.com",
                "password": "no",
                "next": "/audit",
            },
        )
        assert bad.status_code == 401
        assert "Wrong email or password" in bad.text
        good = await client.post(
            "/login",
            data={
                "csrf_token": csrf_of(bad.text),
                "email": "ops@acme.com",
                "password": "correct horse battery",
                "next": "https://evil.example/",
            },
        )
        assert good.status_code == 303
        assert good.headers["location"] == "/"  # no open redirect
        assert (await client.get("/api/auth/me")).status_code == 200
        out = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
        assert (await client.get("/api/auth/me")).status_code == 401


async def test_unknown_address_gets_a_page_for_browsers_and_json_for_clients(
    app: FastAPI,
) -> None:
    async with browser(app) as client:
        page = await client.get("/no-such-page", headers={"Accept": "text/html"})
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "Page not found" in page.text
        api = await client.get("/api/no-such-thing", headers={"Accept": "text/html"})
        assert api.status_code == 404
        assert api.json()["error"] == "NOT_FOUND"
