"""The shared receipt fixture (``tests/conformance/receipts.json``) holds for the Python side.

The TypeScript SDK checks the same file (``sdk/typescript/test/receipts.test.ts``): receipts
signed by the server's signer verify, hashes of the canonical form agree byte for byte, and
the receipts to refuse are refused for the same reason on both sides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from awaithumans import ErrorCode, ReceiptInvalidError, verify_receipt
from awaithumans.core._receipts import sha256_of, shown_sha256
from tests.conformance.make_receipts import FIXTURE, build, render

DATA: dict[str, Any] = json.loads(Path(FIXTURE).read_text(encoding="utf-8"))
VALID: list[dict[str, Any]] = DATA["valid"]
REFUSED: list[dict[str, Any]] = DATA["refused"]


def test_fixture_is_what_the_script_writes() -> None:
    # The format or the canonical form changed without running make_receipts.py.
    assert Path(FIXTURE).read_text(encoding="utf-8") == render(build())


def test_fixture_covers_what_the_canonical_form_must_get_right() -> None:
    names = {case["name"] for case in VALID}
    assert {"unicode", "escapes", "numbers", "key_order", "lone_surrogate"} <= names
    assert {case["reason"] for case in REFUSED} == {"signature", "unknown_key", "malformed"}


@pytest.mark.parametrize("case", VALID, ids=[case["name"] for case in VALID])
def test_valid_receipt_verifies_with_every_key_form(case: dict[str, Any]) -> None:
    receipt = case["receipt"]
    forms = [DATA["public_key"], *DATA["public_key_forms"].values()]
    for key in forms:
        verified = verify_receipt(receipt, key)
        assert verified.key_id == DATA["key_id"]
        assert verified.task_id == receipt["task_id"]
    assert sha256_of(case["response"]) == receipt["response_sha256"]
    shown = case["shown"]
    assert (
        shown_sha256(shown["payload"], shown["form_definition"], shown["response_schema"])
        == receipt["shown_sha256"]
    )


@pytest.mark.parametrize("case", VALID, ids=[case["name"] for case in VALID])
def test_valid_receipt_is_refused_by_another_key(case: dict[str, Any]) -> None:
    with pytest.raises(ReceiptInvalidError) as refused:
        verify_receipt(case["receipt"], DATA["other_public_key"])
    assert refused.value.reason == "unknown_key"
    assert refused.value.code == ErrorCode.RECEIPT_INVALID


@pytest.mark.parametrize("case", REFUSED, ids=[case["name"] for case in REFUSED])
def test_refused_receipt_gives_the_fixture_reason(case: dict[str, Any]) -> None:
    with pytest.raises(ReceiptInvalidError) as refused:
        verify_receipt(case["receipt"], DATA["public_key"])
    assert refused.value.reason == case["reason"]


@pytest.mark.parametrize("case", DATA["canonical"], ids=lambda case: str(case["sha256"])[:8])
def test_canonical_hash_matches_fixture(case: dict[str, Any]) -> None:
    assert sha256_of(case["value"]) == case["sha256"]
