"""The root secret (``AWAITHUMANS_PAYLOAD_KEY``) and the purpose keys derived from it.

Operators configure exactly one secret. Every cryptographic use in the server gets its own
key derived from it with HKDF, so a value produced for one purpose (say, a CSRF token) can
never be accepted for another (say, a session cookie), and no two features share key
material even though only one secret has to be stored and rotated.

Rotation: the new secret becomes ``AWAITHUMANS_PAYLOAD_KEY`` and the old one moves to
``AWAITHUMANS_PAYLOAD_KEY_PREVIOUS``. The ring then seals and signs with the new secret
only, and still opens and accepts what the old one made (:meth:`KeyRing.verifying_keys`):
links already in people's inboxes and sessions already open keep working, and
``awaithumans rotate-key`` re-encrypts the stored rows at its own pace. Every root has a
public :attr:`KeyRing.key_id`, written into each sealed blob, so a blob names the key that
opens it.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from typing import Final, Literal, get_args

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PAYLOAD_KEY_ENV: Final = "AWAITHUMANS_PAYLOAD_KEY"
KEY_BYTES: Final = 32
KEY_ID_BYTES: Final = 8

KeyPurpose = Literal[
    "payload-encryption",
    "session",
    "webhook",
    "handoff",
    "email-action",
    "email-reply",
    "csrf",
    "slack-oauth",
    "key-id",
    # The seed of the Ed25519 key that signs decision receipts (security/receipts.py).
    "receipt-signing",
]
PURPOSES: Final[frozenset[str]] = frozenset(get_args(KeyPurpose))

_INFO_PREFIX: Final = b"awaithumans:"
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]{64}")
# Both base64 alphabets are accepted: `openssl rand -base64 32` prints the standard one
# (with + and /), and rejecting what the most common recipe prints would only cause friction.
_B64_RE: Final = re.compile(r"[A-Za-z0-9_\-+/]{43}=?")

_FORMAT_HELP: Final = (
    f"{PAYLOAD_KEY_ENV} must be 32 random bytes written as URL-safe base64 "
    "(43 characters, or 44 with a trailing '=') or as 64 hex characters; "
    'generate one with `python -c "import secrets; print(secrets.token_urlsafe(32))"`'
)


def parse_payload_key(text: str) -> bytes:
    """Decode the configured root secret.

    Args:
        text: The value of ``AWAITHUMANS_PAYLOAD_KEY``; surrounding whitespace is ignored.

    Returns:
        The 32 raw key bytes.

    Raises:
        ValueError: If the text is not 32 bytes in base64url or hex. The message describes
            the expected format and never echoes the (secret) input.
    """
    value = text.strip()
    if _HEX_RE.fullmatch(value):
        return bytes.fromhex(value)
    if _B64_RE.fullmatch(value):
        normalized = value.rstrip("=").replace("+", "-").replace("/", "_")
        try:
            raw = base64.urlsafe_b64decode(normalized + "=")
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == KEY_BYTES:
            return raw
    raise ValueError(f"invalid payload key: {_FORMAT_HELP}")


def generate_payload_key() -> str:
    """Create a fresh root secret in the format :func:`parse_payload_key` accepts.

    Returns:
        32 bytes from the OS CSPRNG as unpadded base64url (43 characters).
    """
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=").decode("ascii")


class KeyRing:
    """Holds the root secret and hands out one derived key per purpose.

    Derivation is HKDF-SHA256 with no salt (the root is already uniformly random, which is
    what HKDF's extract step would otherwise have to provide) and
    ``info = b"awaithumans:" + purpose``. Results are cached because derived keys are used
    on hot paths such as checking a session cookie on every request.
    """

    __slots__ = ("_cache", "_previous", "_root")

    def __init__(self, root: bytes, previous: Sequence[bytes] = ()) -> None:
        """Create a key ring.

        Args:
            root: The 32-byte root secret, e.g. from :func:`parse_payload_key`.
            previous: Root secrets this one replaced, newest first: what they sealed still
                opens and what they signed still verifies, until rotation is over.

        Raises:
            ValueError: If a root is not exactly 32 bytes.
        """
        if len(root) != KEY_BYTES:
            raise ValueError(f"the root key must be {KEY_BYTES} bytes, got {len(root)}")
        self._root = bytes(root)
        self._cache: dict[str, bytes] = {}
        # The current root again among the previous ones would only double every check.
        self._previous = tuple(KeyRing(old) for old in previous if bytes(old) != self._root)

    @classmethod
    def from_text(cls, text: str, previous: Sequence[str] = ()) -> KeyRing:
        """Build a key ring straight from the configured ``AWAITHUMANS_PAYLOAD_KEY`` text
        (and ``AWAITHUMANS_PAYLOAD_KEY_PREVIOUS``'s, if rotating).

        Raises:
            ValueError: If a text is not a valid key (see :func:`parse_payload_key`).
        """
        return cls(parse_payload_key(text), [parse_payload_key(old) for old in previous])

    @property
    def previous(self) -> tuple[KeyRing, ...]:
        """The rings of the roots this one replaced, newest first."""
        return self._previous

    @property
    def key_id(self) -> bytes:
        """A public name of the root (8 bytes derived from it; reveals nothing of it)."""
        return self.derive("key-id")[:KEY_ID_BYTES]

    def verifying_keys(self, purpose: KeyPurpose) -> tuple[bytes, ...]:
        """The keys a signature for ``purpose`` may have been made with: the current one
        first, then each previous root's. Signing always uses :meth:`derive`."""
        return (self.derive(purpose), *(old.derive(purpose) for old in self._previous))

    def derive(self, purpose: KeyPurpose) -> bytes:
        """Return the 32-byte key for one purpose.

        Args:
            purpose: One of :data:`PURPOSES`. Unknown names are rejected rather than derived,
                because a typo would otherwise yield a different, silently wrong key.

        Returns:
            The derived key; the same bytes every time for the same root and purpose.

        Raises:
            ValueError: If ``purpose`` is not a known purpose.
        """
        cached = self._cache.get(purpose)
        if cached is not None:
            return cached
        if purpose not in PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}; expected one of {sorted(PURPOSES)}")
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=_INFO_PREFIX + purpose.encode("ascii"),
        )
        key = hkdf.derive(self._root)
        # A race between two threads only derives the same bytes twice; no lock needed.
        self._cache[purpose] = key
        return key

    def __repr__(self) -> str:
        # Never let the secret reach logs or tracebacks through a repr.
        return "KeyRing(<redacted>)"
