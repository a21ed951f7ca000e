"""What the node side (``await_human``) and the relay side agree on."""

from __future__ import annotations

from typing import Any

# Key of the interrupt value LangGraph surfaces to clients: {"awaithumans": {...}}.
INTERRUPT_KEY = "awaithumans"

# The fields of the webhook's data the node needs; the resume value is checkpointed, so it
# stays small and free of personal data such as the answering human's email. The one
# exception is ``approvals``, present only for a task that asked for several approvals:
# the node returns who voted how (``approvals_of``).
_RESUME_FIELDS = ("task_id", "status", "response", "verification_attempt")


def interrupt_task_id(value: Any) -> str | None:
    """The awaithumans task id carried by an interrupt value, or None if it is not ours.

    The value is ``{"awaithumans": {...}}``, or in the Agent Inbox's shape a list of one
    request that carries the same entry (``inbox.py``).
    """
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict):
        return None
    info = value.get(INTERRUPT_KEY)
    task_id = info.get("task_id") if isinstance(info, dict) else None
    return task_id if isinstance(task_id, str) else None


def resume_value(data: dict[str, Any]) -> dict[str, Any]:
    """The value a waiting ``await_human`` is resumed with, from a webhook's ``data``."""
    value = {k: data.get(k) for k in _RESUME_FIELDS}
    if data.get("approvals"):
        value["approvals"] = data["approvals"]
    return value
