"""The signed address a reply goes to: ``reply+<token>@<AWAITHUMANS_EMAIL_REPLY_DOMAIN>``.

The token names the task and the recipient it was mailed to, and a MAC over both with the
``email-reply`` key derived from the payload key; nothing is stored. It has to fit in an
address's local part (64 characters at most, and mail systems may change its case), so it
is not the dashboard's JSON token: it is the two ids' 24 bytes and the first 10 bytes of
an HMAC-SHA256, in lowercase base32: 55 characters after ``reply+``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from awaithumans.server.security import KeyRing

PREFIX = "reply+"
_MAC_BYTES = 10
_ID = re.compile(r"(tsk|usr)_([0-9a-f]{24})")
_ADDRESS = re.compile(r"reply\+([a-z2-7]{55})@(.+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ReplyTo:
    task_id: str
    user_id: str


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.digest(key, body, hashlib.sha256)[:_MAC_BYTES]


def reply_address(keyring: KeyRing, domain: str, task_id: str, user_id: str) -> str | None:
    """The address replies about ``task_id`` from ``user_id`` go to (None for ids of
    another shape than this server mints)."""
    task, user = _ID.fullmatch(task_id), _ID.fullmatch(user_id)
    if task is None or user is None or task[1] != "tsk" or user[1] != "usr":
        return None
    body = bytes.fromhex(task[2]) + bytes.fromhex(user[2])
    token = (
        base64.b32encode(body + _mac(keyring.derive("email-reply"), body))
        .decode("ascii")
        .rstrip("=")
        .lower()
    )
    return f"{PREFIX}{token}@{domain}"


def read_reply_address(keyring: KeyRing, address: str, domain: str) -> ReplyTo | None:
    """Who and what a reply address stands for; None unless this server signed it."""
    found = _ADDRESS.fullmatch(address.strip())
    if found is None or found[2].lower() != domain.lower():
        return None
    try:
        raw = base64.b32decode(found[1].upper() + "=")
    except ValueError:  # binascii.Error: not base32 after all
        return None
    body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(body) != 24:
        return None
    # Addresses handed out before a key rotation keep working (every key tried, no early exit).
    keys = keyring.verifying_keys("email-reply")
    matched = [hmac.compare_digest(mac, _mac(key, body)) for key in keys]
    if not any(matched):
        return None
    return ReplyTo(f"tsk_{body[:12].hex()}", f"usr_{body[12:].hex()}")
