"""Writes ``wire.json``: values both SDKs must compute bit for bit, made by the Python side.

Run by hand after a change to ``derive_idempotency_key`` or the webhook signing:

    .venv/bin/python tests/conformance/make_wire.py

- ``idempotency_keys``: ``{task, payload, key}``, ``key`` from
  ``awaithumans.core._wire.derive_idempotency_key``. Payloads hold what JSON carries the
  same way in both languages (strings with every kind of character, integers, floats that
  are not whole, nesting, keys whose order differs by code point and by UTF-16 unit).
- ``langgraph_keys``: the LangGraph adapter's node keys (``node_idempotency_key``).
- ``webhooks``: bodies signed as the server signs them (the ``standardwebhooks`` package),
  with the secret, id and timestamp, for the TypeScript ``verifyWebhook``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from awaithumans.adapters.langgraph._node import node_idempotency_key
from awaithumans.core._wire import derive_idempotency_key

FIXTURE = Path(__file__).with_name("wire.json")

_PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    ("Refund $180 for order ord_1042?", {"order_id": "ord_1042", "amount_usd": 180}),
    ("Approve?", {}),
    ("Ünïcödé task ✓", {"name": "Zoë", "city": "Zürich", "emoji": "🎉", "cjk": "日本語"}),
    ("escapes", {"text": 'quote " backslash \\ newline \n tab \t nul \x00 del \x7f bell \x07'}),
    ("separators", {"ls": "\u2028\u2029", "bom": "\ufeff", "slash": "a/b", "lone": "x"}),
    ("floats", {"half": 1.5, "small": 1e-7, "tiny": 0.0001, "big": 1.5e300, "neg": -2.25}),
    ("float edges", {"e16": 1e16, "e15": 123456789012345.6, "third": 1 / 3, "e-5": 1.5e-5}),
    ("ints", {"max_safe": 2**53 - 1, "min_safe": -(2**53 - 1), "zero": 0, "neg": -7}),
    ("literals", {"yes": True, "no": False, "none": None, "list": [1, "two", None, [3]]}),
    (
        "key order",
        {"b": 1, "a": 2, "A": 3, "_": 4, "é": 5, "\U0001f600": 6, "\uffff": 7, "aa": 8, "": 9},
    ),
    ("nested", {"z": {"y": {"x": [{"b": 1, "a": 2}]}}, "a": [[], {}]}),
]


def idempotency_cases() -> list[dict[str, Any]]:
    return [
        {"task": task, "payload": payload, "key": derive_idempotency_key(task, payload)}
        for task, payload in _PAYLOADS
    ]


def langgraph_cases() -> list[dict[str, Any]]:
    return [
        {
            "thread_id": thread,
            "checkpoint_ns": ns,
            "index": index,
            "key": node_idempotency_key(thread, ns, index),
        }
        for thread, ns, index in [
            ("thread-1", "", 0),
            ("thread-1", "approve:7c1b0a8e-3c4f-4d7f-9d0e-2b1f6a9c8e11", 1),
            ("Zoë's thread", "outer:1|inner:2", 3),
        ]
    ]


def webhook_cases() -> list[dict[str, Any]]:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    at = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
    cases = []
    events: list[tuple[str, dict[str, Any]]] = [
        ("evt_1", {"task_id": "tsk_" + "0" * 24, "status": "completed", "response": {"ok": 1}}),
        ("evt_2", {"task_id": "tsk_" + "1" * 24, "status": "cancelled", "note": "Zoë ✓"}),
    ]
    for event_id, data in events:
        body = json.dumps(
            {"type": f"task.{data['status']}", "timestamp": at.isoformat(), "data": data},
            separators=(",", ":"),
        )
        cases.append(
            {
                "secret": secret,
                "id": event_id,
                "timestamp": int(at.timestamp()),
                "body": body,
                "signature": Webhook(secret).sign(event_id, at, body),
            }
        )
    return cases


def build() -> dict[str, Any]:
    return {
        "idempotency_keys": idempotency_cases(),
        "langgraph_keys": langgraph_cases(),
        "webhooks": webhook_cases(),
    }


def render(value: dict[str, Any]) -> str:
    # ASCII on disk: the fixture's own bytes must not depend on an editor's encoding.
    return json.dumps(value, indent=2, ensure_ascii=True) + "\n"


def main() -> int:
    FIXTURE.write_text(render(build()), encoding="utf-8")
    print(f"wrote {FIXTURE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
