"""argon2id hashing, verification and the password policy."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher

from awaithumans.server.security import (
    MAX_PASSWORD_LENGTH,
    hash_password,
    hash_password_async,
    needs_rehash,
    validate_new_password,
    verify_password,
    verify_password_async,
)


def test_hash_and_verify() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "correct horse batterY")
    assert hash_password("correct horse battery") != hashed  # salted


@pytest.mark.parametrize("bad_hash", ["", "not-a-hash", "$argon2id$v=19$garbage", "$2b$12$abc"])
def test_invalid_hash_never_raises(bad_hash: str) -> None:
    assert verify_password(bad_hash, "whatever") is False


def test_missing_user_returns_false() -> None:
    assert verify_password(None, "anything") is False


def test_needs_rehash() -> None:
    assert not needs_rehash(hash_password("password1"))
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("password1")
    assert needs_rehash(weaker)
    assert verify_password(weaker, "password1")  # old hashes keep working
    assert needs_rehash("garbage")


async def test_async_variants() -> None:
    hashed = await hash_password_async("async password")
    results = await asyncio.gather(
        verify_password_async(hashed, "async password"),
        verify_password_async(hashed, "wrong password"),
        verify_password_async(None, "async password"),
    )
    assert list(results) == [True, False, False]


def test_validate_new_password() -> None:
    validate_new_password("12345678")
    validate_new_password("x" * MAX_PASSWORD_LENGTH)
    with pytest.raises(ValueError, match="at least 8 characters"):
        validate_new_password("1234567")
    with pytest.raises(ValueError, match="at most 1024 characters"):
        validate_new_password("x" * (MAX_PASSWORD_LENGTH + 1))
