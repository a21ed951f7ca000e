"""Pytest plugin: database URLs for both backends, and real server processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every database test runs twice: on a SQLite file and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real `awaithumans serve` process on a free port, on both backends."""
    proc = ServerProcess(database_url=database_url, workdir=tmp_path)
    with proc:
        yield proc


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server on SQLite only, for tests where the backend does not matter."""
    with ServerProcess(workdir=tmp_path) as proc:
        yield proc
