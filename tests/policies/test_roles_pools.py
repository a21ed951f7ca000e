"""Roles and pools in the directory, through the admin API (in-process app, real lifespan,
SQLite and PostgreSQL): they round-trip on create, list and patch; a bad name is a 400
``INVALID_MEMBERSHIP`` that changes nothing; a patch that leaves them out keeps them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from awaithumans.server.db.models import UserMembershipRow
from tests._app_fixtures import make_settings, running_app


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
