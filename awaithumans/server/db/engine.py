"""Engine construction and schema migration."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic_core import from_json
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from awaithumans.server.security.private_files import create_private_file
from awaithumans.server.settings import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

log = logging.getLogger("awaithumans.server.db")


def make_engine(settings: Settings) -> AsyncEngine:
    """An async engine tuned for the configured backend.

    JSON columns are read with pydantic-core's parser (Rust; the same values as the
    standard library's, big integers included): a task row holds several JSON documents
    (schemas, form, payload metadata), and decoding them was 7 % of the server's CPU in a
    burst of answers.
    """
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            # SQLite would create the file 0644 (less the umask) and its -wal and -shm files
            # with the file's own mode; created here first, 0600 in a 0700 folder, all three
            # stay private. An existing file or folder keeps its mode (doctor reports it).
            create_private_file(path)
        engine = create_async_engine(
            settings.database_url,
            pool_size=8,
            max_overflow=8,
            connect_args={"timeout": 30},
            json_deserializer=from_json,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        json_deserializer=from_json,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (polls, lists) run while the single writer commits; NORMAL sync is
    # durable across application crashes, which is the failure mode that matters here.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already).

    Safe when several processes start together on one database (replicas, ``serve
    --workers``): each upgrade runs in one transaction that first takes the database's
    write lock, so one process migrates while the others wait, then find the schema current
    and change nothing. Without it, two of them both saw an empty database and both created
    ``alembic_version`` (or the first table), and all but one crashed at start.

    * PostgreSQL: a transaction-level advisory lock (``pg_advisory_xact_lock``) on a fixed
      key, released by the commit or rollback, so a process killed mid-migration leaves
      nothing held. PostgreSQL's DDL is transactional: the waiters see all of the upgrade
      or none of it.
    * SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock up front (waiting up to the
      ``busy_timeout``). Without it Python's sqlite3 ran each ``CREATE TABLE`` on its own,
      outside any transaction.
    """
    from alembic import command

    def upgrade(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), "head")

    async with engine.begin() as conn:
        await _lock_for_migration(conn)
        await conn.run_sync(upgrade)


# Any fixed 64-bit number works, as long as nothing else on the database uses it for its own
# advisory lock: the bytes of "awaitmig" (awaithumans' migrations), well inside a signed bigint.
MIGRATION_LOCK_KEY = int.from_bytes(b"awaitmig", "big")


async def _lock_for_migration(conn: AsyncConnection) -> None:
    """Hold the database's migration lock until ``conn``'s transaction ends."""
    if conn.dialect.name == "sqlite":
        # SQLAlchemy leaves BEGIN to the driver, which has not sent one yet; an explicit one
        # makes the driver treat everything after it as inside this transaction.
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    if conn.dialect.name != "postgresql":
        return
    got = await conn.scalar(select(func.pg_try_advisory_xact_lock(MIGRATION_LOCK_KEY)))
    if not got:
        log.info("waiting for another process to finish migrating the database")
        await conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)
