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
    return webhook_secrets(settings, keyring)[0]


def webhook_secrets(settings: Settings, keyring: KeyRing) -> list[str]:
    """Every secret a webhook is signed with: the current one first, then, while the payload
    key rotates, the one derived from each previous key.

    Standard Webhooks carries several signatures in one header, and a receiver accepts the
    event when any of them checks out: relays configured with the old secret keep working
    until they are given the new one, and no event is refused in between.
    """
    if settings.webhook_secret is not None:
        return [settings.webhook_secret.get_secret_value()]
    rings = (keyring, *keyring.previous)
    return ["whsec_" + base64.b64encode(ring.derive("webhook")).decode() for ring in rings]
