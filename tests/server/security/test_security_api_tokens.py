"""Agent keys, admin and setup tokens."""

from __future__ import annotations

import hashlib
import re

from awaithumans.server.security import (
    agent_key_prefix,
    generate_admin_token,
    generate_agent_key,
    generate_setup_token,
    hash_token,
    tokens_equal,
)


def test_agent_key_shape_and_digest() -> None:
    full_key, prefix, digest = generate_agent_key()
    assert re.fullmatch(r"ah_live_[a-z0-9]{8}_[A-Za-z0-9]{32}", full_key)
    assert full_key.startswith(f"ah_live_{prefix}_")
    assert digest == hashlib.sha256(full_key.encode()).hexdigest()
    assert digest == hash_token(full_key)
    assert full_key not in digest


def test_agent_keys_are_unique() -> None:
    keys = {generate_agent_key()[0] for _ in range(200)}
    assert len(keys) == 200


def test_agent_key_prefix_parsing() -> None:
    full_key, prefix, _ = generate_agent_key()
    assert agent_key_prefix(full_key) == prefix
    for bad in (
        "",
        "ah_live_",
        full_key + "x",
        full_key[:-1],
        "Bearer " + full_key,
        full_key.replace("ah_live_", "ah_test_"),
        generate_admin_token(),
    ):
        assert agent_key_prefix(bad) is None


def test_hash_token_is_sha256_hex() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", hash_token("é"))


def test_tokens_equal() -> None:
    assert tokens_equal("same", "same")
    assert not tokens_equal("same", "Same")
    assert not tokens_equal("same", "same-but-longer")
    assert tokens_equal("é", "é")  # non-ASCII does not raise


def test_admin_and_setup_tokens() -> None:
    admin = generate_admin_token()
    assert admin.startswith("ah_admin_")
    assert len(admin) == len("ah_admin_") + 43
    setup = generate_setup_token()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", setup)
    assert generate_setup_token() != setup
    assert generate_admin_token() != admin
