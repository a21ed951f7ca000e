"""The services one server process runs, built once by ``create_app`` and shared by routes.

Complete at construction: every field is there from the start, so no route or job ever
finds half a context. The background loops (outbox dispatcher, timeout scheduler) are not
fields; they run from the app's lifespan and are reached through :attr:`ServerContext.wake`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.server.auth import Authenticator
from awaithumans.server.db.engine import make_engine
from awaithumans.server.observability.metrics import Metrics
from awaithumans.server.security import DoorLimits, KeyRing, LoginThrottle, Sealer
from awaithumans.server.services.delivery import HandlerRegistry
from awaithumans.server.services.hub import TaskHub
from awaithumans.server.services.schemas import SchemaCache
from awaithumans.server.services.wakeups import Wakeups
from awaithumans.server.services.writer import Writer
from awaithumans.server.settings import Settings


@dataclass(frozen=True, slots=True)
class ServerContext:
    settings: Settings
    engine: AsyncEngine
    #: The same pool in autocommit, for reads of one statement: on PostgreSQL a read on
    #: ``engine`` is BEGIN, the read, then ROLLBACK when the connection goes back, three
    #: round trips where one will do (answers.load_task, on every answer and cold poll).
    reader: AsyncEngine
    writer: Writer
    hub: TaskHub
    keyring: KeyRing
    sealer: Sealer
    auth: Authenticator
    #: What the outbox delivers to: engine handlers and notification channels, by name.
    handlers: HandlerRegistry
    schemas: SchemaCache
    wake: Wakeups
    login_throttle: LoginThrottle
    #: Requests per client address at the setup, handoff and one-click doors.
    door_limits: DoorLimits
    #: Signs the dashboard's CSRF tokens (derived once from the payload key).
    csrf_key: bytes
    #: Accepted for CSRF tokens: ``csrf_key``, then the previous payload keys' (rotation).
    csrf_keys: tuple[bytes, ...]
    #: This app's Prometheus instruments and registry (``GET /metrics``).
    metrics: Metrics

    @classmethod
    def build(cls, settings: Settings, handlers: HandlerRegistry) -> ServerContext:
        """Everything from ``settings``; nothing connects until first use.

        Raises:
            ValueError: ``settings.payload_key`` is missing or malformed.
        """
        if settings.payload_key is None:
            raise ValueError(
                "AWAITHUMANS_PAYLOAD_KEY is not set: the server needs a 32-byte key to "
                "encrypt payloads (generate one with `awaithumans gen-key`)."
            )
        keyring = KeyRing.from_text(
            settings.payload_key.get_secret_value(), settings.previous_payload_keys()
        )
        engine = make_engine(settings)
        hub = TaskHub()
        return cls(
            settings=settings,
            engine=engine,
            reader=engine.execution_options(isolation_level="AUTOCOMMIT"),
            writer=Writer(engine),
            hub=hub,
            keyring=keyring,
            sealer=Sealer(keyring),
            auth=Authenticator(engine, settings, keyring),
            handlers=handlers,
            schemas=SchemaCache(),
            wake=Wakeups(),
            login_throttle=LoginThrottle.from_settings(settings),
            door_limits=DoorLimits.from_settings(settings),
            csrf_key=keyring.derive("csrf"),
            csrf_keys=keyring.verifying_keys("csrf"),
            metrics=Metrics(hub),
        )
