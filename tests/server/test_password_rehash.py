"""A password hash made with older argon2 parameters is replaced at the next sign-in.

Hashes carry their parameters; raising them (``security/passwords.py``) must not leave
every existing user on the old ones forever, nor lock anyone out.
"""

from __future__ import annotations

import httpx
from argon2 import PasswordHasher, Type
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.server.db.models import UserRow
from awaithumans.server.security import needs_rehash
from tests._app_fixtures import make_settings, running_app

PASSWORD = "correct horse battery"
# Weaker than the server's own parameters: what an older release would have stored.
OLD_HASHER = PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1, type=Type.ID)


async def stored_hash(engine: AsyncEngine, email: str) -> str:
    async with engine.connect() as conn:
        found = await conn.scalar(select(UserRow.password_hash).where(UserRow.email == email))
    assert isinstance(found, str)
    return found


def browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_an_old_hash_is_upgraded_at_sign_in_and_the_password_still_works(
    database_url: str,
) -> None:
    async with running_app(make_settings(database_url)) as (app, _admin):
        engine: AsyncEngine = app.state.ctx.engine
        async with browser(app) as c:
            made = await c.post(
                "/api/setup/operator",
                json={
                    "token": app.state.setup_token,
                    "email": "ops@acme.com",
                    "display_name": "Ops",
                    "password": PASSWORD,
                },
            )
            assert made.status_code == 201, made.text
        old = OLD_HASHER.hash(PASSWORD)
        assert needs_rehash(old)
        async with engine.begin() as conn:
            await conn.execute(
                update(UserRow).where(UserRow.email == "ops@acme.com").values(password_hash=old)
            )

        async with browser(app) as c:
            signed_in = await c.post(
                "/api/auth/login", json={"email": "ops@acme.com", "password": PASSWORD}
            )
            assert signed_in.status_code == 200, signed_in.text
        upgraded = await stored_hash(engine, "ops@acme.com")
        assert upgraded != old
        assert not needs_rehash(upgraded)

        # A wrong password changes nothing; the right one still opens a session.
        async with browser(app) as c:
            wrong = await c.post(
                "/api/auth/login", json={"email": "ops@acme.com", "password": "not it at all"}
            )
            assert wrong.status_code == 401
            assert await stored_hash(engine, "ops@acme.com") == upgraded
            again = await c.post(
                "/api/auth/login", json={"email": "ops@acme.com", "password": PASSWORD}
            )
            assert again.status_code == 200, again.text
        assert await stored_hash(engine, "ops@acme.com") == upgraded
