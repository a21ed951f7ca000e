"""Password hashing for directory users (argon2id).

Parameters are the OWASP minimum for argon2id (19 MiB, 2 passes, 1 lane): strong enough
against offline cracking, and cheap enough (~20 ms) that logins and the test suite stay fast.
Hashes record their own parameters, so raising them later only needs :func:`needs_rehash`
at the next successful login.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH: Final = 8
# The upper bound is not about storage (argon2 consumes any length) but about refusing
# absurd request bodies early and keeping error messages predictable.
MAX_PASSWORD_LENGTH: Final = 1024

_HASHER: Final = PasswordHasher(
    time_cost=2,
    memory_cost=19_456,  # KiB
    parallelism=1,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)

# Each argon2 call holds ~19 MiB and a full core. A small dedicated pool bounds both under a
# login flood: extra requests queue here instead of exhausting memory or starving the shared
# default executor that the rest of the server uses. Threads start lazily on first use.
_POOL: Final = ThreadPoolExecutor(
    max_workers=max(1, min(4, os.cpu_count() or 1)),
    thread_name_prefix="awaithumans-argon2",
)


@functools.cache
def _dummy_hash() -> str:
    # Computed once, on first need, so importing this module costs nothing.
    return _HASHER.hash("awaithumans-no-such-user")


def hash_password(password: str) -> str:
    """Hash a password for storage.

    Args:
        password: The plaintext password; validate new ones with
            :func:`validate_new_password` first.

    Returns:
        A self-describing argon2id hash string (``$argon2id$v=19$...``).
    """
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password against a stored hash.

    Args:
        password_hash: The stored hash, or ``None`` when no such user exists. With ``None``
            a dummy hash is still verified so that the response time does not reveal
            whether an account exists.
        password: The password the user typed.

    Returns:
        True only if the password matches. A mismatch, a corrupt or unsupported hash, and a
        missing user all return False; this function never raises for them.
    """
    if password_hash is None:
        with contextlib.suppress(VerificationError):
            _HASHER.verify(_dummy_hash(), password)
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """Like :func:`verify_password`, but off the event loop.

    argon2 takes tens of milliseconds of CPU per call; running it inline would stall every
    other request (and every long-poll) on the loop for that long.

    Args:
        password_hash: The stored hash, or ``None`` when no such user exists.
        password: The password the user typed.

    Returns:
        True only if the password matches.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, verify_password, password_hash, password)


async def hash_password_async(password: str) -> str:
    """Like :func:`hash_password`, but off the event loop.

    Args:
        password: The plaintext password.

    Returns:
        The argon2id hash string.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, hash_password, password)


def needs_rehash(password_hash: str) -> bool:
    """Tell whether a stored hash was made with other parameters than the current ones.

    Call after a successful login and, if True, store a fresh :func:`hash_password` of the
    password the user just proved they know.

    Args:
        password_hash: The stored hash.

    Returns:
        True if the hash should be replaced, including when it cannot be parsed at all.
    """
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except ValueError:  # InvalidHashError and unsupported-parameter errors both subclass it
        return True


def validate_new_password(password: str) -> None:
    """Enforce the password policy for a new or changed password.

    Only length is checked: composition rules push users toward predictable patterns, and
    length is what makes a password hard to guess (NIST SP 800-63B).

    Args:
        password: The proposed password.

    Raises:
        ValueError: With a message fit to show the user; it never contains the password.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"Password must be at most {MAX_PASSWORD_LENGTH} characters long.")
