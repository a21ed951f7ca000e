"""Writes ``receipts.json``: decision receipts signed as the server signs them, for both SDKs.

Run by hand after a change to the receipt format or the canonical form
(``awaithumans/core/_receipts.py``, ``awaithumans/server/security/receipts.py``):

    .venv/bin/python tests/conformance/make_receipts.py

The receipts are signed by the server's own ``ReceiptSigner`` with a fixed payload key (Ed25519
signatures are deterministic, so the file is the same on every run).
``tests/core/test_receipt_conformance.py`` checks the Python side against it (and that this
script would write the same file); ``sdk/typescript/test/receipts.test.ts`` checks that the
TypeScript ``verifyReceipt``, ``sha256Of`` and ``shownSha256`` agree byte for byte.

- ``public_key`` (base64url, as ``awaithumans receipt-key`` prints it), its ``key_id`` and
  ``public_key_forms`` (the same key as hex, padded standard base64 and PEM);
  ``other_public_key``: another server's key, which verifies none of them.
- ``valid``: ``{name, receipt, response, shown}``: a receipt that verifies, the answer whose
  hash it holds and what the person was shown (``payload``, ``form_definition``,
  ``response_schema``), whose hash it holds too. Values exercise what the canonical form
  must get right: non-ASCII text written as UTF-8, escapes, key order by code point, whole
  floats written as integers (``2.0``, ``1e20``, ``1.5e300``), fractions as ``repr``, a lone
  surrogate. The file is written with ``ensure_ascii`` so the lone surrogate survives.
- ``canonical``: ``{value, sha256}``: values and the hash of their canonical form.
- ``refused``: ``{name, receipt, reason}``: receipts each SDK must refuse, and the
  ``ReceiptInvalidError.reason`` it must give.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from awaithumans.core._receipts import key_id_of, sha256_of, shown_sha256
from awaithumans.server.security.keys import KeyRing
from awaithumans.server.security.receipts import ReceiptSigner, decision_receipt

FIXTURE = Path(__file__).with_name("receipts.json")

# Fixed payload keys: the fixture must not change between runs.
_ROOT = bytes(range(32))
_OTHER_ROOT = bytes(range(100, 132))

_AT = datetime(2026, 12, 6, 16, 30, 5, 123456, tzinfo=UTC)

_FORM = {
    "version": 1,
    "fields": [
        {"name": "approved", "kind": "boolean", "label": "Approved", "required": True},
        {"name": "notes", "kind": "short_text", "label": "Notes", "required": False},
    ],
}
_SCHEMA = {
    "type": "object",
    "title": "Decision",
    "properties": {"approved": {"type": "boolean"}, "notes": {"type": "string"}},
    "required": ["approved"],
}

# (name, task, payload, response, answered_by, channel)
_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, str | None], str]] = [
    (
        "plain",
        "Refund $180 for order ord_1042?",
        {"order_id": "ord_1042", "amount_usd": 180},
        {"approved": True, "notes": None},
        {"id": "u_alice", "email": "alice@acme.com", "label": "Alice"},
        "dashboard",
    ),
    (
        "unicode",
        "Überweisung für Zoë bestätigen? ✓",
        {"name": "Zoë", "city": "Zürich", "emoji": "🎉", "cjk": "日本語", "rtl": "שלום"},
        {"approved": False, "notes": "Nein — zu hoch 💸"},
        {"id": "u_zoe", "email": "zoë@bücher.de", "label": "Zoë Müller"},
        "slack",
    ),
    (
        "escapes",
        'Quote " and backslash \\ in the title',
        {"text": "tab \t nl \n cr \r nul \x00 bell \x07 del \x7f esc \x1b", "ls": "\u2028\u2029"},
        {"approved": True, "notes": 'line one\nline two\t"quoted"\\'},
        {"id": "admin", "email": None, "label": "Admin token"},
        "api",
    ),
    (
        "numbers",
        "Numbers",
        {
            "whole_float": 2.0,
            "big_float": 1e20,
            "huge_float": 1.5e300,
            "negative_zero": -0.0,
            "half": 1.5,
            "small": 1e-7,
            "tiny": 0.0001,
            "third": 1 / 3,
            "neg": -2.25,
            "max_safe": 2**53 - 1,
            "ints": [0, -7, 42],
        },
        {"approved": True, "notes": None, "score": 3.0, "ratio": 0.25},
        {"id": "u_bob", "email": "bob@acme.com", "label": None},
        "email",
    ),
    (
        "key_order",
        "Key order",
        # Sorted by code point: UTF-16 order would put the astral key before U+FF61.
        {"b": 1, "a": {"z": [], "y": {}}, "ｱ": "halfwidth", "😀": "astral", "A": "upper"},
        {"approved": True, "notes": "", "nested": {"b": [1, {"d": 0, "c": True}], "a": None}},
        {"id": "u_carol", "email": "carol@acme.com", "label": "Carol"},
        "dashboard",
    ),
    (
        "lone_surrogate",
        "A lone surrogate \ud800 in the title",
        {"lone": "x\udfffy"},
        {"approved": True, "notes": "\udbff"},
        {"id": "u_dan", "email": "dan@acme.com", "label": "Dan"},
        "api",
    ),
]


def _canonical_values() -> list[Any]:
    return [
        None,
        True,
        "",
        "é",
        {"b": 2.0, "a": [1.5, 1e-7, 1e16, 123456789012345.6, -0.0]},
        {"\x1f": "\x7f", "€": "\u2028"},
        [1e20, 1.5e300, 2**53 - 1, 9007199254740993.0],
    ]


def _signer(root: bytes) -> ReceiptSigner:
    return ReceiptSigner(KeyRing(root))


def _raw_public(signer: ReceiptSigner) -> bytes:
    text = signer.public_key()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _pem(raw: bytes) -> str:
    key = Ed25519PublicKey.from_public_bytes(raw)
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _receipt(signer: ReceiptSigner, case: tuple[Any, ...], task_id: str) -> dict[str, Any]:
    _name, task, payload, response, answered_by, channel = case
    return decision_receipt(
        signer,
        task_id=task_id,
        task=task,
        shown=shown_sha256(payload, _FORM, _SCHEMA),
        response=response,
        answered_by=answered_by,
        channel=channel,
        status="completed",
        at=_AT,
    )


def _refused(signer: ReceiptSigner, other: ReceiptSigner) -> list[dict[str, Any]]:
    good = _receipt(signer, _CASES[1], "task_unicode")
    foreign = _receipt(other, _CASES[1], "task_unicode")

    def changed(**fields: Any) -> dict[str, Any]:
        return {**good, **fields}

    return [
        {"name": "tampered_task", "receipt": changed(task="Something else"), "reason": "signature"},
        {
            "name": "tampered_answerer",
            "receipt": changed(answered_by={**good["answered_by"], "email": "mallory@acme.com"}),
            "reason": "signature",
        },
        {
            "name": "tampered_response_hash",
            "receipt": changed(response_sha256=sha256_of({"approved": True, "notes": None})),
            "reason": "signature",
        },
        {
            "name": "other_servers_signature_under_this_key_id",
            "receipt": changed(signature=foreign["signature"]),
            "reason": "signature",
        },
        {"name": "other_servers_receipt", "receipt": foreign, "reason": "unknown_key"},
        {"name": "extra_field", "receipt": changed(extra=1), "reason": "malformed"},
        {
            "name": "at_without_zone",
            "receipt": changed(at="2026-12-06T16:30:05"),
            "reason": "malformed",
        },
        {"name": "short_signature", "receipt": changed(signature="AAAA"), "reason": "malformed"},
        {"name": "version_2", "receipt": changed(version=2), "reason": "malformed"},
    ]


def build() -> dict[str, Any]:
    signer = _signer(_ROOT)
    other = _signer(_OTHER_ROOT)
    raw = _raw_public(signer)
    valid = []
    for case in _CASES:
        name, _task, payload, response, _by, _channel = case
        valid.append(
            {
                "name": name,
                "receipt": _receipt(signer, case, f"task_{name}"),
                "response": response,
                "shown": {"payload": payload, "form_definition": _FORM, "response_schema": _SCHEMA},
            }
        )
    return {
        "public_key": signer.public_key(),
        "key_id": key_id_of(raw),
        "public_key_forms": {
            "hex": raw.hex(),
            "base64": base64.b64encode(raw).decode("ascii"),
            "pem": _pem(raw),
        },
        "other_public_key": other.public_key(),
        "valid": valid,
        "canonical": [{"value": v, "sha256": sha256_of(v)} for v in _canonical_values()],
        "refused": _refused(signer, other),
    }


def render(fixture: dict[str, Any]) -> str:
    # ensure_ascii: a lone surrogate has no UTF-8 form, but its \\u escape is JSON.
    return json.dumps(fixture, indent=2, ensure_ascii=True) + "\n"


def main() -> int:
    FIXTURE.write_text(render(build()), encoding="utf-8")
    print(f"wrote {FIXTURE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
