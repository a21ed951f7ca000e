"""The migrations create exactly the schema the models describe, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from awaithumans.server.db.engine import make_engine, migrate
from awaithumans.server.db.models import Base
from tests._app_fixtures import make_settings


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(make_settings(database_url))
    try:
        await migrate(engine)

        def differences(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
    finally:
        await engine.dispose()
    assert diff == []
