"""Pytest plugin: the app in-process (real database, real lifespan), driven through httpx.

For tests that exercise many requests quickly (property tests, fuzzing). End-to-end tests
use a real server process instead (``tests/_server_fixtures.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from awaithumans.server.app import create_app
from awaithumans.server.settings import Settings

ADMIN_TOKEN = "test-admin-token-" + "x" * 16


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "payload_key": secrets.token_hex(32),
        "admin_api_token": ADMIN_TOKEN,
        "public_url": "http://testserver",
        # Tests' webhook receivers listen on 127.0.0.1, as with `awaithumans dev`.
        "allow_private_callbacks": "loopback",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Start the app's lifespan and yield it with an admin-authenticated client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client:
            yield app, client


@pytest.fixture
async def app_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client against the in-process app, on SQLite and on PostgreSQL."""
    async with running_app(make_settings(database_url)) as (_app, client):
        yield client
