"""Helpers for testing code that uses awaithumans.

:class:`ServerProcess` runs a real awaithumans server in a subprocess (:func:`free_port` picks
a port for it); :class:`WebhookReceiver` records the webhooks it sends (each a
:class:`Delivery`); :class:`PrefectServer` runs a real Prefect server, for flows that call the
Prefect adapter. :func:`stop_process` stops a child process: a signal, then a kill.
"""

from awaithumans.testing._process import stop_process
from awaithumans.testing.prefect import PrefectServer
from awaithumans.testing.receiver import Delivery, WebhookReceiver
from awaithumans.testing.server import ServerProcess, free_port

__all__ = [
    "Delivery",
    "PrefectServer",
    "ServerProcess",
    "WebhookReceiver",
    "free_port",
    "stop_process",
]
