"""What the adapters' receivers share about an awaithumans webhook's body (no I/O)."""

from __future__ import annotations

from typing import Any


def webhook_data(event: Any) -> dict[str, Any]:
    """The event's ``data`` object, given the whole webhook body or just its ``data``.

    Raises:
        ValueError: Neither shape.
    """
    if isinstance(event, dict) and isinstance(event.get("data"), dict) and "type" in event:
        event = event["data"]
    if not isinstance(event, dict):
        raise ValueError("expected the webhook's data object")
    return event
