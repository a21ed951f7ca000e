"""The setup token is one per database: shared by every process, kept across restarts.

Processes here are engines (or whole apps) of their own on one real database, SQLite and
PostgreSQL; ``tests/e2e/test_replica_start.py`` starts real ``serve`` processes together.
"""

from __future__ import annotations

import asyncio
import json
import secrets

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.server.bootstrap import SETUP_TOKEN_KEY, issue_setup_token
from awaithumans.server.db.engine import make_engine, migrate
from awaithumans.server.db.models import ServerStateRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.security import KeyRing, Sealer, generate_setup_token, hash_token
from awaithumans.server.settings import Settings
from tests._app_fixtures import make_settings, running_app

OPERATOR = {"email": "ops@acme.com", "display_name": "Ops", "password": "correct horse battery"}


def sealer_for(settings: Settings) -> Sealer:
    assert settings.payload_key is not None
    return Sealer(KeyRing.from_text(settings.payload_key.get_secret_value()))


async def rows(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.scalars(
            select(ServerStateRow.value).where(ServerStateRow.key == SETUP_TOKEN_KEY)
        )
        return list(found)


async def setup(app: FastAPI, token: str | None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anon:
        return await anon.post("/api/setup/operator", json={"token": token, **OPERATOR})


async def test_processes_starting_together_share_one_token(database_url: str) -> None:
    settings = make_settings(database_url)
    engines = [make_engine(settings) for _ in range(8)]
    try:
        await migrate(engines[0])
        tokens = await asyncio.gather(
            *(issue_setup_token(e, sealer_for(settings)) for e in engines)
        )
        assert tokens[0] is not None
        assert set(tokens) == {tokens[0]}
        (stored,) = await rows(engines[0])
        # Setup checks the hash; the plain token is not in the row, only sealed.
        assert json.loads(stored)["hash"] == hash_token(tokens[0])
        assert tokens[0] not in stored
        # A restart (or a replica added later) prints the same link again.
        assert await issue_setup_token(engines[3], sealer_for(settings)) == tokens[0]
        assert await rows(engines[0]) == [stored]
    finally:
        for e in engines:
            await e.dispose()


async def test_a_link_printed_by_one_replica_works_on_another(database_url: str) -> None:
    settings = make_settings(database_url)
    async with (
        running_app(settings) as (first, _),
        running_app(settings) as (second, _),
    ):
        token = first.state.setup_token
        assert token
        assert second.state.setup_token == token
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=second), base_url="http://testserver"
        ) as anon:
            page = await anon.get("/setup", params={"token": token})
        assert page.status_code == 200
        assert "not valid" not in page.text
        made = await setup(second, token)
        assert made.status_code == 201, made.text
        # Used once, on any replica: gone for all of them.
        again = await setup(first, token)
        assert again.status_code in (403, 409)
        assert await rows(first.state.ctx.engine) == []
    # Once there is an operator, a start issues nothing.
    async with running_app(settings) as (third, _):
        assert third.state.setup_token is None
        assert await rows(third.state.ctx.engine) == []


async def test_a_token_this_server_cannot_read_is_replaced(database_url: str) -> None:
    settings = make_settings(database_url)
    engine = make_engine(settings)
    try:
        await migrate(engine)
        # What an older version stored: the hash alone, no way to print the link again.
        legacy = generate_setup_token()
        async with engine.begin() as conn:
            await conn.execute(
                insert(ServerStateRow).values(
                    key=SETUP_TOKEN_KEY, value=hash_token(legacy), updated_at=utcnow()
                )
            )
        tokens = await asyncio.gather(
            *(issue_setup_token(engine, sealer_for(settings)) for _ in range(4))
        )
        assert tokens[0] not in (None, legacy)
        assert set(tokens) == {tokens[0]}
        (stored,) = await rows(engine)
        assert json.loads(stored)["hash"] == hash_token(tokens[0])

        # Sealed under a payload key this server does not have (a server with another
        # key wrote it): replaced the same way.
        async with engine.begin() as conn:
            await conn.execute(delete(ServerStateRow))
        other = Sealer(KeyRing.from_text(secrets.token_hex(32)))
        foreign = await issue_setup_token(engine, other)
        assert foreign is not None
        assert await issue_setup_token(engine, other) == foreign
        mine = await issue_setup_token(engine, sealer_for(settings))
        assert mine not in (None, foreign, tokens[0])
        assert await issue_setup_token(engine, sealer_for(settings)) == mine
    finally:
        await engine.dispose()


async def test_the_replaced_token_is_the_one_setup_accepts(database_url: str) -> None:
    settings = make_settings(database_url)
    engine = make_engine(settings)
    try:
        await migrate(engine)
        legacy = generate_setup_token()
        async with engine.begin() as conn:
            await conn.execute(
                insert(ServerStateRow).values(
                    key=SETUP_TOKEN_KEY, value=hash_token(legacy), updated_at=utcnow()
                )
            )
    finally:
        await engine.dispose()
    async with running_app(settings) as (app, _):
        token = app.state.setup_token
        assert token not in (None, legacy)
        refused = await setup(app, legacy)
        assert refused.status_code == 403
        assert refused.json()["error"] == "INVALID_SETUP_TOKEN"
        made = await setup(app, token)
        assert made.status_code == 201, made.text
