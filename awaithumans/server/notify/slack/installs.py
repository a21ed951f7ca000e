"""Slack workspaces installed through OAuth: stored with their bot token sealed.

The token is encrypted with the payload key (AES-GCM), bound to its team id so a sealed
token cannot be moved to another row; Settings → Slack lists the installs and removes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from awaithumans.server.db.models import SlackInstallationRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.security import Sealer
from awaithumans.server.services.writer import Write


@dataclass(frozen=True, slots=True)
class Install:
    team_id: str
    team_name: str | None
    bot_user_id: str | None
    scopes: str | None
    installed_at: datetime


def install_aad(team_id: str) -> bytes:
    return f"slack-install:{team_id}".encode()


class SaveInstall(Write[None]):
    """Store (or replace, on a reinstall) a workspace's installation."""

    def __init__(
        self,
        sealer: Sealer,
        team_id: str,
        team_name: str | None,
        bot_user_id: str | None,
        scopes: str | None,
        token: str,
        installed_by: str | None,
    ) -> None:
        now = utcnow()
        self.team_id = team_id
        self.values = {
            "team_name": team_name,
            "bot_user_id": bot_user_id,
            "scopes": scopes,
            "token_enc": sealer.seal(token.encode(), aad=install_aad(team_id)),
            "installed_by": installed_by,
            "updated_at": now,
        }
        self.now = now

    async def apply(self, conn: AsyncConnection) -> None:
        changed = await conn.execute(
            update(SlackInstallationRow)
            .where(SlackInstallationRow.team_id == self.team_id)
            .values(**self.values)
        )
        if changed.rowcount == 0:
            await conn.execute(
                insert(SlackInstallationRow).values(
                    team_id=self.team_id, installed_at=self.now, **self.values
                )
            )


class RemoveInstall(Write[bool]):
    def __init__(self, team_id: str) -> None:
        self.team_id = team_id

    async def apply(self, conn: AsyncConnection) -> bool:
        gone = await conn.execute(
            delete(SlackInstallationRow).where(SlackInstallationRow.team_id == self.team_id)
        )
        return gone.rowcount > 0


async def list_installs(engine: AsyncEngine) -> list[Install]:
    async with engine.connect() as conn:
        t = SlackInstallationRow
        rows = await conn.execute(
            select(t.team_id, t.team_name, t.bot_user_id, t.scopes, t.installed_at).order_by(
                t.installed_at
            )
        )
        return [Install(*row) for row in rows]


async def install_token(engine: AsyncEngine, sealer: Sealer, team_id: str) -> str | None:
    """The bot token of an installed workspace, unsealed; None if not installed."""
    async with engine.connect() as conn:
        sealed = (
            await conn.execute(
                select(SlackInstallationRow.token_enc).where(
                    SlackInstallationRow.team_id == team_id
                )
            )
        ).scalar_one_or_none()
    return sealer.open(sealed, aad=install_aad(team_id)).decode() if sealed is not None else None
