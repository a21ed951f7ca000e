"""Cryptography and abuse controls for the server.

* :mod:`.keys`: the root secret and per-purpose keys derived from it.
* :mod:`.encryption`: AES-256-GCM sealing of stored payloads.
* :mod:`.passwords`: argon2id password hashing and the password policy.
* :mod:`.signing`: HMAC-signed tokens for cookies and links.
* :mod:`.api_tokens`: agent API keys, the admin token and the setup token.
* :mod:`.ratelimit`: rate limits (sign-in failures; setup, handoff and one-click links).
* :mod:`.client_address`: the client's address, behind trusted proxies or not.
"""

from __future__ import annotations

from awaithumans.server.security.api_tokens import (
    agent_key_prefix,
    generate_admin_token,
    generate_agent_key,
    generate_setup_token,
    hash_token,
    tokens_equal,
)
from awaithumans.server.security.client_address import client_address
from awaithumans.server.security.encryption import DecryptionError, Sealer
from awaithumans.server.security.keys import (
    PAYLOAD_KEY_ENV,
    PURPOSES,
    KeyPurpose,
    KeyRing,
    generate_payload_key,
    parse_payload_key,
)
from awaithumans.server.security.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    hash_password_async,
    needs_rehash,
    validate_new_password,
    verify_password,
    verify_password_async,
)
from awaithumans.server.security.ratelimit import Door, DoorLimits, LoginThrottle, too_many
from awaithumans.server.security.signing import (
    ExpiredTokenError,
    InvalidSignatureError,
    TokenError,
    sign,
    verify,
)

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PAYLOAD_KEY_ENV",
    "PURPOSES",
    "DecryptionError",
    "Door",
    "DoorLimits",
    "ExpiredTokenError",
    "InvalidSignatureError",
    "KeyPurpose",
    "KeyRing",
    "LoginThrottle",
    "Sealer",
    "TokenError",
    "agent_key_prefix",
    "client_address",
    "generate_admin_token",
    "generate_agent_key",
    "generate_payload_key",
    "generate_setup_token",
    "hash_password",
    "hash_password_async",
    "hash_token",
    "needs_rehash",
    "parse_payload_key",
    "sign",
    "tokens_equal",
    "too_many",
    "validate_new_password",
    "verify",
    "verify_password",
    "verify_password_async",
]
