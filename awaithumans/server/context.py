"""The services one server process runs, built once by ``create_app`` and shared by routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.server.services.hub import TaskHub
from awaithumans.server.services.schemas import SchemaCache
from awaithumans.server.services.writer import Writer
from awaithumans.server.settings import Settings

if TYPE_CHECKING:
    from awaithumans.server.auth import Authenticator
    from awaithumans.server.channels.base import ChannelRegistry
    from awaithumans.server.security import KeyRing, Sealer
    from awaithumans.server.services.outbox import OutboxDispatcher
    from awaithumans.server.services.scheduler import TimeoutScheduler


@dataclass
class ServerContext:
    settings: Settings
    engine: AsyncEngine
    writer: Writer
    hub: TaskHub
    keyring: KeyRing
    sealer: Sealer
    schemas: SchemaCache = field(default_factory=SchemaCache)
    channels: ChannelRegistry | None = None
    outbox: OutboxDispatcher | None = None
    scheduler: TimeoutScheduler | None = None
    auth: Authenticator | None = None

    def kick_outbox(self) -> None:
        if self.outbox is not None:
            self.outbox.kick()
