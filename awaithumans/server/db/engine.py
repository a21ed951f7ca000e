"""Engine construction and schema migration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from awaithumans.server.security.private_files import create_private_file
from awaithumans.server.settings import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def make_engine(settings: Settings) -> AsyncEngine:
    """An async engine tuned for the configured backend."""
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
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
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
    """Bring the schema to the newest revision (a no-op when it is there already)."""
    from alembic import command

    def upgrade(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)
