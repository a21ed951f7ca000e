"""Roles and pools in the directory, through the admin API and the dashboard's users page
(in-process app, real lifespan, SQLite and PostgreSQL): they round-trip on create, list and
patch; a bad name is a 400 ``INVALID_MEMBERSHIP`` (or the page again, the problem at the
field) that changes nothing; a patch that leaves them out keeps them. The dashboard's away
forms (users page for anyone, account page for oneself) are here too."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from awaithumans.server.db.models import UserMembershipRow
from tests._app_fixtures import make_settings, running_app
from tests.dashboard.test_admin_pages import (
    field_error,
    operator_browser,
    post_form,
    sign_in,
    started,
    user_form,
)


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with running_app(make_settings(database_url)) as (app, client):
        yield app, client


async def memberships(app: Any) -> list[tuple[str, str, str]]:
    async with app.state.ctx.engine.connect() as conn:
        rows = await conn.execute(
            select(UserMembershipRow.user_id, UserMembershipRow.kind, UserMembershipRow.name)
        )
        return sorted((r.user_id, r.kind, r.name) for r in rows)


def refused(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code, body
    message: str = body["message"]
    return message


async def test_roles_and_pools_round_trip(admin: tuple[Any, httpx.AsyncClient]) -> None:
    app, client = admin
    made = await client.post(
        "/api/admin/users",
        json={
            "email": "ana@acme.com",
            "display_name": "Ana",
            "roles": ["finance", " legal ", "finance"],
            "pools": ["tier1"],
        },
    )
    assert made.status_code == 201, made.text
    user = made.json()
    assert user["roles"] == ["finance", "legal"]  # trimmed, deduplicated, sorted
    assert user["pools"] == ["tier1"]
    assert user["away_until"] is None
    assert user["delegate_to_user_id"] is None
    uid = user["id"]
    assert await memberships(app) == [
        (uid, "pool", "tier1"),
        (uid, "role", "finance"),
        (uid, "role", "legal"),
    ]

    # A patch that names only pools keeps the roles; an empty list empties its kind.
    patched = await client.patch(f"/api/admin/users/{uid}", json={"pools": ["tier2", "vip.eu"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["roles"] == ["finance", "legal"]
    assert patched.json()["pools"] == ["tier2", "vip.eu"]
    patched = await client.patch(
        f"/api/admin/users/{uid}", json={"roles": [], "display_name": "Ana B"}
    )
    assert patched.json()["roles"] == []
    assert patched.json()["display_name"] == "Ana B"
    # Other fields alone leave both lists be.
    patched = await client.patch(f"/api/admin/users/{uid}", json={"is_operator": True})
    assert patched.json()["pools"] == ["tier2", "vip.eu"]

    listed = {u["id"]: u for u in (await client.get("/api/admin/users")).json()}
    assert listed[uid]["roles"] == []
    assert listed[uid]["pools"] == ["tier2", "vip.eu"]
    assert await memberships(app) == [(uid, "pool", "tier2"), (uid, "pool", "vip.eu")]


@pytest.mark.parametrize(
    "bad",
    [
        {"roles": ["Finance"]},
        {"roles": ["fin ance"]},
        {"roles": ["-leading-dash"]},
        {"pools": ["x" * 65]},
        {"pools": [""]},
        {"pools": [7]},
        {"roles": [None]},
        {"pools": [f"p{i}" for i in range(51)]},
    ],
)
async def test_a_bad_name_is_refused_and_changes_nothing(
    admin: tuple[Any, httpx.AsyncClient], bad: dict[str, Any]
) -> None:
    app, client = admin
    made = await client.post(
        "/api/admin/users",
        json={"email": "bo@acme.com", "display_name": "Bo", "roles": ["ops"]},
    )
    uid = made.json()["id"]
    before_users = (await client.get("/api/admin/users")).json()
    before = await memberships(app)

    message = refused(
        await client.post(
            "/api/admin/users", json={"email": "cy@acme.com", "display_name": "Cy", **bad}
        ),
        400,
        "INVALID_MEMBERSHIP",
    )
    assert "role" in message or "pool" in message
    refused(
        await client.patch(f"/api/admin/users/{uid}", json={"display_name": "Changed", **bad}),
        400,
        "INVALID_MEMBERSHIP",
    )
    assert (await client.get("/api/admin/users")).json() == before_users
    assert await memberships(app) == before


async def test_null_lists_and_wrong_shapes_are_422(admin: tuple[Any, httpx.AsyncClient]) -> None:
    _app, client = admin
    uid = (
        await client.post("/api/admin/users", json={"email": "di@acme.com", "display_name": "Di"})
    ).json()["id"]
    for body in ({"roles": None}, {"pools": "tier1"}, {"roles": ["a"] * 101}):
        refused(await client.patch(f"/api/admin/users/{uid}", json=body), 422, "VALIDATION_ERROR")
    refused(
        await client.post(
            "/api/admin/users", json={"email": "ed@acme.com", "display_name": "Ed", "roles": "x"}
        ),
        422,
        "VALIDATION_ERROR",
    )


# -- the dashboard's users page (no JavaScript: forms with CSRF, as a browser posts them) --


async def test_users_page_shows_and_edits_roles_and_pools(database_url: str) -> None:
    async with started(database_url) as s, operator_browser(s) as browser:
        added = await post_form(
            browser,
            "/users",
            "/users",
            {
                "display_name": "Fay",
                "email": "fay@acme.com",
                "roles": "finance, legal",
                "pools": "tier1",
            },
        )
        assert added.status_code == 303, added.text
        fay = (await s.users())["Fay"]
        assert (fay["roles"], fay["pools"]) == (["finance", "legal"], ["tier1"])
        listing = (await browser.get("/users")).text
        assert "role: finance" in listing
        assert "pool: tier1" in listing

        page = f"/users/{fay['id']}"
        edit = (await browser.get(page)).text
        assert 'name="roles"' in edit
        assert 'value="finance, legal"' in edit
        saved = await post_form(
            browser, page, page, {**user_form(fay), "roles": "legal ops", "pools": ""}
        )
        assert saved.status_code == 303, saved.text
        fay = (await s.users())["Fay"]
        assert (fay["roles"], fay["pools"]) == (["legal", "ops"], [])

        # A bad name: the page again with the problem at the field, nothing saved.
        refused = await post_form(
            browser, page, page, {**user_form(fay, display_name="Renamed"), "roles": "Finance"}
        )
        assert refused.status_code == 400
        error = field_error(refused.text, "roles")
        assert error is not None
        assert "'Finance' is not a valid role name" in error
        assert (await s.users())["Fay"] == fay

        # A form without the fields (an older page) keeps them.
        kept = await post_form(browser, page, page, user_form(fay, display_name="Fay B"))
        assert kept.status_code == 303
        assert (await s.users())["Fay B"]["roles"] == ["legal", "ops"]


async def test_users_page_and_account_page_set_a_delegation(database_url: str) -> None:
    async with started(database_url) as s, operator_browser(s) as browser:
        made = await s.admin.post(
            "/api/admin/users",
            json={
                "email": "gil@acme.com",
                "display_name": "Gil",
                "password": "gil's long password",
            },
        )
        gil = made.json()["id"]
        ops = s.ops["id"]
        page = f"/users/{gil}"
        until = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
        field = until.strftime("%Y-%m-%dT%H:%M")
        set_ = await post_form(
            browser, page, f"{page}/delegation", {"away_until": field, "delegate": ops}
        )
        assert set_.status_code == 303, set_.text
        gil_now = (await s.users())["Gil"]
        assert gil_now["delegate_to_user_id"] == ops
        assert datetime.fromisoformat(gil_now["away_until"]) == until
        shown = (await browser.get(page)).text
        assert "away until" in shown
        assert "End delegation now" in shown

        # Refusals land at their field, nothing changes: self, a past date.
        for data, field_id, said in (
            ({"away_until": field, "delegate": gil}, "delegate", "themselves"),
            ({"away_until": "2001-01-01T00:00", "delegate": ops}, "away_until", "passed"),
            ({"away_until": "soon", "delegate": ops}, "away_until", "Enter the date"),
        ):
            resp = await post_form(browser, page, f"{page}/delegation", data)
            assert resp.status_code == 400
            if field_id == "away_until":
                error = field_error(resp.text, field_id)
            else:
                found = re.search(r'id="delegate-error">([^<]*)<', resp.text)
                error = html.unescape(found.group(1)) if found else None
            assert error is not None
            assert said in error, error
        assert (await s.users())["Gil"] == gil_now

        ended = await post_form(browser, page, f"{page}/delegation", {"end_delegation": "1"})
        assert ended.status_code == 303
        assert (await s.users())["Gil"]["away_until"] is None

        # Gil, on his own account page: away, with the ops person as delegate, and back.
        async with s.browser() as own:
            assert (await sign_in(own, "gil@acme.com", "gil's long password")).status_code == 303
            assert "Away until (UTC)" in (await own.get("/account")).text
            mine = await post_form(
                own, "/account", "/account/delegation", {"away_until": field, "delegate": ops}
            )
            assert mine.status_code == 303, mine.text
            assert (await s.users())["Gil"]["delegate_to_user_id"] == ops
            # Ops delegating to Gil now would close a loop: refused on Ops's own page.
            cycle = await post_form(
                browser, "/account", "/account/delegation", {"away_until": field, "delegate": gil}
            )
            assert cycle.status_code == 400
            assert "cycle" in cycle.text
            back = await post_form(own, "/account", "/account/delegation", {"end_delegation": "1"})
            assert back.status_code == 303
            assert (await s.users())["Gil"]["delegate_to_user_id"] is None
            # Without a CSRF token nothing happens.
            bare = await own.post(
                "/account/delegation", data={"away_until": field, "delegate": ops}
            )
            assert bare.status_code == 403
            assert (await s.users())["Gil"]["delegate_to_user_id"] is None
