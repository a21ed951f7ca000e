"""Deliveries back into workflow engines, one module each, behind ``deliver(job) -> Outcome``.

* :mod:`.webhook`: the signed webhook to a task's ``callback_url`` (relays, resumers);
* :mod:`.temporal`: signals waiting workflows itself (``AWAITHUMANS_TEMPORAL_ADDRESS``);
* :mod:`.prefect`: resumes waiting flow runs itself (``AWAITHUMANS_PREFECT_API_URL``).

A new engine is a module here with a handler whose ``name`` is the outbox kind it takes,
added to :func:`engine_handlers`, and a row kind in ``services/events.py``.
"""

from __future__ import annotations

from awaithumans.server.engines.prefect import PrefectResumer, prefect_available
from awaithumans.server.engines.temporal import TemporalSignaler, temporal_available
from awaithumans.server.engines.webhook import WebhookSender
from awaithumans.server.security import KeyRing
from awaithumans.server.services.delivery import Handler
from awaithumans.server.settings import Settings
from awaithumans.server.webhook_secret import webhook_secrets


def engine_handlers(settings: Settings, keyring: KeyRing) -> list[Handler]:
    """The handlers this configuration asks for: webhooks always, engines when addressed.

    Raises:
        RuntimeError: An engine is addressed but its extra is not installed.
    """
    handlers: list[Handler] = [
        WebhookSender(
            webhook_secrets(settings, keyring),
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.allow_private_callbacks,
        )
    ]
    if settings.temporal_address:
        if not temporal_available():
            raise RuntimeError(
                "AWAITHUMANS_TEMPORAL_ADDRESS is set but temporalio is not installed: "
                'pip install "awaithumans[server,temporal]"'
            )
        handlers.append(TemporalSignaler(settings.temporal_address, settings.temporal_namespace))
    if settings.prefect_api_url:
        if not prefect_available():
            raise RuntimeError(
                "AWAITHUMANS_PREFECT_API_URL is set but prefect is not installed: "
                'pip install "awaithumans[server,prefect]"'
            )
        key = settings.prefect_api_key
        handlers.append(
            PrefectResumer(settings.prefect_api_url, key.get_secret_value() if key else None)
        )
    return handlers
