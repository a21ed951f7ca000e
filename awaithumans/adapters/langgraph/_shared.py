"""Names shared by the node side (``await_human``) and the resumer side."""

from __future__ import annotations

from typing import Any

# Key of the interrupt value LangGraph surfaces to clients: {"awaithumans": {...}}.
INTERRUPT_KEY = "awaithumans"
# Key under which the task's metadata records where the waiting node lives.
METADATA_KEY = "langgraph"


def interrupt_task_id(value: Any) -> str | None:
    """The awaithumans task id carried by an interrupt value, or None if it is not ours."""
    if not isinstance(value, dict):
        return None
    info = value.get(INTERRUPT_KEY)
    task_id = info.get("task_id") if isinstance(info, dict) else None
    return task_id if isinstance(task_id, str) else None
