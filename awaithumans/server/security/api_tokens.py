"""Agent API keys, the admin token and the one-time setup token.

Agent keys look like ``ah_live_<prefix>_<secret>``. The prefix (8 chars) is stored in clear
so a key can be looked up and shown in the UI ("ah_live_k3x9q2ma_…"); only a SHA-256 digest
of the whole key is stored, and the full key is shown to its creator once. The recognisable
``ah_`` prefix also lets secret scanners spot keys leaked into repositories or logs.

A fast hash is the right choice here, unlike for passwords: these tokens carry 128+ bits of
randomness, so no amount of hashing speed makes guessing one from its digest feasible, while
a slow hash would add tens of milliseconds of CPU to every single API call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from typing import Final

AGENT_KEY_PREFIX: Final = "ah_live_"
ADMIN_PREFIX: Final = "ah_admin_"
PREFIX_CHARS: Final = 8
SECRET_CHARS: Final = 32

# Letters and digits only: no '_' (the separator) or '-', so a double-click selects the whole
# key. The prefix is lowercase to read well in listings; 62**32 gives ~190 bits of secret.
_PREFIX_ALPHABET: Final = string.ascii_lowercase + string.digits
_SECRET_ALPHABET: Final = string.ascii_letters + string.digits
_AGENT_KEY_RE: Final = re.compile(
    rf"{AGENT_KEY_PREFIX}([a-z0-9]{{{PREFIX_CHARS}}})_[A-Za-z0-9]{{{SECRET_CHARS}}}"
)


def _random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def hash_token(token: str) -> str:
    """Digest a high-entropy token for storage or lookup.

    Args:
        token: An agent key, admin token or setup token.

    Returns:
        The SHA-256 hex digest (64 lowercase characters).
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Compare two secrets in time independent of where they first differ.

    Args:
        a: One value, e.g. the presented token or its digest.
        b: The other, e.g. the stored value.

    Returns:
        True if equal. Non-ASCII input is fine (it is compared as UTF-8 bytes).
    """
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def generate_agent_key() -> tuple[str, str, str]:
    """Mint a new agent API key.

    Returns:
        ``(full_key, prefix, digest)``: the key to show once, the 8-character lookup prefix,
        and :func:`hash_token` of the full key, which is all the server keeps.
    """
    prefix = _random_string(_PREFIX_ALPHABET, PREFIX_CHARS)
    secret = _random_string(_SECRET_ALPHABET, SECRET_CHARS)
    full_key = f"{AGENT_KEY_PREFIX}{prefix}_{secret}"
    return full_key, prefix, hash_token(full_key)


def agent_key_prefix(key: str) -> str | None:
    """Extract the lookup prefix from a presented agent key.

    Args:
        key: The bearer value a client sent.

    Returns:
        The 8-character prefix, or None if ``key`` is not shaped like an agent key (so the
        caller can reject it without a database query).
    """
    match = _AGENT_KEY_RE.fullmatch(key)
    return match.group(1) if match else None


def generate_admin_token() -> str:
    """Mint an admin bearer token (``ah_admin_`` plus 32 random bytes, base64url).

    Returns:
        The token.
    """
    return ADMIN_PREFIX + secrets.token_urlsafe(32)


def generate_setup_token() -> str:
    """Mint the one-time token that authorises creating the first operator account.

    Returns:
        32 random bytes as base64url (43 characters).
    """
    return secrets.token_urlsafe(32)
