"""The Standard Webhooks secret receivers use to check our signatures."""

from __future__ import annotations

import base64

from awaithumans.server.security import KeyRing
from awaithumans.server.settings import Settings


def webhook_secret(settings: Settings, keyring: KeyRing) -> str:
    """``AWAITHUMANS_WEBHOOK_SECRET`` if set, else one derived from the payload key.

    Deriving it means a dev server needs no extra configuration, and the secret stays the
    same across restarts, so relays keep verifying.
    """
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    return "whsec_" + base64.b64encode(keyring.derive("webhook")).decode()
