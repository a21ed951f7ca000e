"""Pytest plugin: a real, throwaway PostgreSQL for the test session.

Load it with ``pytest_plugins = ["tests._pg_fixtures"]`` in the root ``conftest.py`` (or, in a
single test module, by importing the two fixtures from here).

Fixtures:
    postgres_server: One :class:`~tests.support.postgres.PostgresServer` for the whole session,
        started on first use and stopped at the end.
    postgres_url: A fresh, empty database per test, as an async SQLAlchemy URL
        (``postgresql+asyncpg://postgres@127.0.0.1:PORT/NAME``); dropped after the test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server shared by every test of the session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """Async SQLAlchemy URL of a new database that only the current test uses."""
    # Named after the test, so a database seen in a server log or psql is easy to trace;
    # the random suffix keeps parametrised and repeated tests apart.
    stem = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower())[:40].strip("_")
    name = f"t_{stem}_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    yield url
    # Dropping keeps the cluster small over a long session (each database is ~7 MB);
    # WITH (FORCE) disconnects anything the test left open.
    postgres_server.drop_database(name)
