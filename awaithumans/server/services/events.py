"""Outbox rows: what must be announced after a commit, written in the same transaction."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from awaithumans.server.db.types import utcnow

WEBHOOK = "webhook"
NOTIFY = "notify"
TEMPORAL = "temporal"


def _event_id() -> str:
    return "msg_" + secrets.token_hex(12)


def outbox_values(task_id: str, kind: str, target: str, body: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    return {
        "event_id": _event_id(),
        "task_id": task_id,
        "kind": kind,
        "target": target,
        "body": body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def created_rows(task_id: str, notify: Sequence[str] | None) -> list[dict[str, Any]]:
    """One notification job per route of a new task."""
    return [
        outbox_values(task_id, NOTIFY, route, {"event": "task.created"}) for route in notify or ()
    ]


def terminal_rows(task: Mapping[str, Any], *, temporal: bool = False) -> list[dict[str, Any]]:
    """The jobs a task's end triggers: its webhook, and a close-out for each notify route.

    The bodies hold only the event name; the dispatcher builds the full payload from the
    task row at delivery, so the answer never sits unencrypted in the outbox.
    """
    event = f"task.{task['status']}"
    rows = []
    if task.get("callback_url"):
        rows.append(outbox_values(task["id"], WEBHOOK, task["callback_url"], {"event": event}))
    rows.extend(
        outbox_values(task["id"], NOTIFY, route, {"event": event})
        for route in task.get("notify") or ()
    )
    workflow = _temporal_workflow(task) if temporal else None
    if workflow is not None:
        # The server signals the workflow itself (it knows Temporal's address); without
        # that, a relay behind callback_url carries the event.
        rows.append(outbox_values(task["id"], TEMPORAL, workflow, {"event": event}))
    return rows


def _temporal_workflow(task: Mapping[str, Any]) -> str | None:
    meta = task.get("task_metadata")
    temporal = meta.get("temporal") if isinstance(meta, dict) else None
    workflow_id = temporal.get("workflow_id") if isinstance(temporal, dict) else None
    return workflow_id if isinstance(workflow_id, str) and workflow_id else None
