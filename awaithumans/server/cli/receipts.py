"""``awaithumans receipt-key`` and ``awaithumans verify-receipt``.

``receipt-key`` prints the public key the server's receipts verify with (derived from the
configured payload key, like ``webhook-secret``); ``verify-receipt`` checks a receipt
offline: no server, no database, only the public key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from awaithumans.core._errors import MissingExtraError, ReceiptInvalidError
from awaithumans.core._receipts import PUBLIC_KEY_ENV, verify_receipt
from awaithumans.server.settings import Settings

SettingsSource = Callable[[], Settings]


def add_commands(sub: Any, settings: SettingsSource) -> None:
    """Register both commands on the CLI's subparsers (``settings``: the admin commands')."""
    key = sub.add_parser(
        "receipt-key", help="print the public key decision receipts are verified with"
    )
    key.add_argument(
        "--all",
        action="store_true",
        help="list the previous keys too (one per AWAITHUMANS_PAYLOAD_KEY_PREVIOUS), with ids",
    )
    key.set_defaults(func=lambda args: cmd_receipt_key(args, settings))

    check = sub.add_parser(
        "verify-receipt", help="check a decision receipt's signature offline (exit 1 if bad)"
    )
    check.add_argument(
        "file",
        metavar="FILE",
        help="the receipt as JSON (or a task or poll body holding one); - reads stdin",
    )
    check.add_argument(
        "--public-key",
        metavar="KEY",
        default=None,
        help=f"the server's public key(s), comma-separated (default: ${PUBLIC_KEY_ENV})",
    )
    check.set_defaults(func=cmd_verify_receipt)


def glue_key_values(argv: list[str]) -> list[str]:
    """``--public-key KEY`` written as ``--public-key=KEY``.

    A base64url key starts with ``-`` one time in 64, and argparse then takes it for an
    option ("expected one argument"); glued to its flag it is always read as the value.
    """
    glued: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--public-key":
            value = next(rest, None)
            glued.append(arg if value is None else f"{arg}={value}")
        else:
            glued.append(arg)
    return glued


def cmd_receipt_key(args: argparse.Namespace, settings_source: SettingsSource) -> int:
    from awaithumans.server.security import KeyRing
    from awaithumans.server.security.receipts import signer_for

    settings = settings_source()
    if settings.payload_key is None:
        print(
            "awaithumans receipt-key: AWAITHUMANS_PAYLOAD_KEY is not set\n"
            "  The receipt key is derived from the server's payload key: run this with the"
            " server's environment.",
            file=sys.stderr,
        )
        return 2
    try:
        ring = KeyRing.from_text(
            settings.payload_key.get_secret_value(), settings.previous_payload_keys()
        )
    except ValueError as exc:
        print(f"awaithumans receipt-key: {exc}", file=sys.stderr)
        return 2
    keys = signer_for(ring).public_keys()
    if not args.all:
        print(keys[0].public_key)
        return 0
    for key in keys:
        print(f"{key.key_id} {key.public_key} {'current' if key.current else 'previous'}")
    return 0


def cmd_verify_receipt(args: argparse.Namespace) -> int:
    keys = args.public_key or os.environ.get(PUBLIC_KEY_ENV)
    if not keys:
        print(
            f"awaithumans verify-receipt: give the server's public key with --public-key (or"
            f" ${PUBLIC_KEY_ENV}); `awaithumans receipt-key` prints it, GET"
            " /api/receipts/public-keys lists it.",
            file=sys.stderr,
        )
        return 2
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"✗ Receipt not read: {exc}", file=sys.stderr)
        return 1
    try:
        found = _receipt_in(text)
        verified = verify_receipt(found, keys)
    except MissingExtraError as exc:
        print(f"awaithumans verify-receipt: {exc.message}", file=sys.stderr)
        return 2
    except ReceiptInvalidError as exc:
        print(f"✗ Receipt invalid ({exc.reason}): {exc.message}", file=sys.stderr)
        return 1
    print(f"✓ Receipt valid: {verified.summary()}")
    return 0


def _receipt_in(text: str) -> Any:
    """The receipt in ``text``: the JSON itself, or its ``receipt`` (a task or poll body)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ReceiptInvalidError(f"The file is not JSON ({exc}).", reason="malformed") from None
    if isinstance(value, dict) and "signature" not in value and "receipt" in value:
        if value["receipt"] is None:
            raise ReceiptInvalidError(
                "The task has no receipt (not completed, or completed before receipts).",
                reason="missing",
                task_id=value.get("id") if isinstance(value.get("id"), str) else None,
            )
        return value["receipt"]
    return value
