"""The throwaway PostgreSQL server really runs, isolates databases and cleans up after itself."""

# The fixtures are imported below and then requested as parameters of the same names, which
# pyflakes reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import asyncpg
import pytest

# pytest_plugins may only be declared in the root conftest, which this module does not own;
# importing the fixtures registers them for this module alone.
from tests._pg_fixtures import postgres_server, postgres_url  # noqa: F401
from tests.support.postgres import (
    PostgresNotInstalledError,
    PostgresServer,
    PostgresServerError,
    find_postgres_bindir,
)


def _plain(url: str) -> str:
    # asyncpg takes a libpq-style URL, not SQLAlchemy's "+asyncpg" dialect form.
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def test_dsn_is_an_async_sqlalchemy_url(postgres_server: PostgresServer) -> None:
    port = postgres_server.port
    assert postgres_server.host == "127.0.0.1"
    assert postgres_server.dsn() == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    assert postgres_server.dsn("x") == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"
    assert postgres_server.dsn("x", driver=None) == f"postgresql://postgres@127.0.0.1:{port}/x"


async def test_databases_are_isolated(postgres_server: PostgresServer) -> None:
    first = postgres_server.create_database("iso_first")
    second = postgres_server.create_database("iso_second")
    try:
        assert first.endswith(f":{postgres_server.port}/iso_first")
        one = await asyncpg.connect(_plain(first))
        two = await asyncpg.connect(_plain(second))
        try:
            assert await one.fetchval("SELECT 1") == 1
            assert await two.fetchval("SELECT 1") == 1
            await one.execute("CREATE TABLE only_here (id int)")
            assert await one.fetchval("SELECT to_regclass('only_here') IS NOT NULL")
            assert await two.fetchval("SELECT to_regclass('only_here') IS NULL")
        finally:
            await one.close()
            await two.close()
    finally:
        postgres_server.drop_database("iso_first")
        postgres_server.drop_database("iso_second")


def test_create_database_rejects_unsafe_names(postgres_server: PostgresServer) -> None:
    for bad in ('x"; DROP DATABASE postgres; --', "1abc", "", "a" * 64, "has-dash"):
        with pytest.raises(ValueError, match="Invalid database name"):
            postgres_server.create_database(bad)


def test_create_database_twice_fails(postgres_server: PostgresServer) -> None:
    postgres_server.create_database("twice")
    try:
        with pytest.raises(PostgresServerError, match="already exists"):
            postgres_server.create_database("twice")
    finally:
        postgres_server.drop_database("twice")


async def test_postgres_url_fixture_gives_an_empty_private_database(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    conn = await asyncpg.connect(_plain(postgres_url))
    try:
        assert await conn.fetchval("SELECT current_database()") == postgres_url.rsplit("/", 1)[1]
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        )
        assert tables == 0
    finally:
        await conn.close()


async def test_listen_notify_across_connections(postgres_url: str) -> None:
    listener = await asyncpg.connect(_plain(postgres_url))
    notifier = await asyncpg.connect(_plain(postgres_url))
    received = asyncio.Event()
    payloads: list[str] = []

    def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        payloads.append(payload)
        received.set()

    try:
        await listener.add_listener("task_events", on_notify)
        await notifier.execute("SELECT pg_notify('task_events', 'task-42')")
        await asyncio.wait_for(received.wait(), timeout=5)
        assert payloads == ["task-42"]
    finally:
        await listener.close()
        await notifier.close()


def _port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` now. With SO_REUSEADDR, as servers
    (PostgreSQL too) bind: connections the stopped server closed linger in TIME_WAIT on
    that port for a minute, and a plain bind fails on them although nobody listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _is_running(server: PostgresServer) -> bool:
    # A call, not the property itself: mypy would keep ``server.running`` narrowed to True
    # across stop() and call every check after it unreachable.
    return server.running


def test_stop_removes_files_and_frees_port() -> None:
    started = time.perf_counter()
    server = PostgresServer().start()
    elapsed = time.perf_counter() - started
    port, temp_dir, data_dir = server.port, server.temp_dir, server.data_dir
    assert _is_running(server)
    assert (data_dir / "PG_VERSION").is_file()
    assert not _port_is_free(port)
    # initdb plus startup; generous so a loaded CI machine does not make this flaky.
    assert elapsed < 20

    server.stop()

    assert not _is_running(server)
    assert not temp_dir.exists()
    assert _port_is_free(port)
    with pytest.raises(PostgresServerError, match="not started"):
        _ = server.port
    server.stop()  # idempotent


def test_context_manager_starts_and_stops() -> None:
    with PostgresServer() as server:
        assert _is_running(server)
        temp_dir = server.temp_dir
    assert not _is_running(server)
    assert not temp_dir.exists()


def test_start_fails_clearly_when_the_port_is_taken(postgres_server: PostgresServer) -> None:
    clash = PostgresServer(port=postgres_server.port, startup_timeout=10)
    with pytest.raises(PostgresServerError, match="did not start"):
        clash.start()
    assert not clash.running
    assert postgres_server.running  # the first server is unharmed


def test_missing_binaries_point_at_system_deps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PostgresNotInstalledError, match=r"scripts/system-deps\.sh"):
        PostgresServer(bindir=tmp_path).start()
    monkeypatch.setenv("AWAITHUMANS_PG_BINDIR", str(tmp_path))
    with pytest.raises(PostgresNotInstalledError, match=r"scripts/system-deps\.sh"):
        find_postgres_bindir()
