"""Helpers for testing code that uses awaithumans.

:class:`PostgresServer` gives a test suite a real, private PostgreSQL to run against, started
and deleted by the tests themselves; see :mod:`awaithumans.testing.postgres`.
:class:`ServerProcess` runs a real awaithumans server in a subprocess;
:class:`PrefectServer` a real Prefect server, for flows that call the Prefect adapter.
"""

from awaithumans.testing.postgres import (
    PostgresNotInstalledError,
    PostgresServer,
    PostgresServerError,
    find_postgres_bindir,
)
from awaithumans.testing.prefect import PrefectServer
from awaithumans.testing.receiver import Delivery, WebhookReceiver
from awaithumans.testing.server import ServerProcess, free_port

__all__ = [
    "Delivery",
    "PostgresNotInstalledError",
    "PostgresServer",
    "PostgresServerError",
    "PrefectServer",
    "ServerProcess",
    "WebhookReceiver",
    "find_postgres_bindir",
    "free_port",
]
