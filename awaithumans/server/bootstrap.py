"""First-run state: the one-shot setup token that lets the first operator in."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from awaithumans.server.db.models import ServerStateRow, UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.security import generate_setup_token, hash_token

SETUP_TOKEN_KEY = "setup_token_hash"  # noqa: S105 - a row key, not a secret


async def operator_exists(conn: AsyncConnection) -> bool:
    count = await conn.scalar(
        select(func.count()).select_from(UserRow).where(UserRow.is_operator.is_(True))
    )
    return bool(count)


async def issue_setup_token(engine: AsyncEngine) -> str | None:
    """A fresh setup token when there is no operator yet (the old one dies); else None.

    Only its hash is stored, so the plain token exists only in the startup banner.
    """
    async with engine.begin() as conn:
        if await operator_exists(conn):
            await conn.execute(delete(ServerStateRow).where(ServerStateRow.key == SETUP_TOKEN_KEY))
            return None
        token = generate_setup_token()
        await conn.execute(delete(ServerStateRow).where(ServerStateRow.key == SETUP_TOKEN_KEY))
        await conn.execute(
            insert(ServerStateRow).values(
                key=SETUP_TOKEN_KEY, value=hash_token(token), updated_at=utcnow()
            )
        )
        return token


async def stored_setup_hash(conn: AsyncConnection) -> str | None:
    value = await conn.scalar(
        select(ServerStateRow.value).where(ServerStateRow.key == SETUP_TOKEN_KEY)
    )
    return value if isinstance(value, str) else None
