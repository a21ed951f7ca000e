"""Outbox rows: what must be announced after a commit, written in the same transaction."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from awaithumans.core._runs import WAITING_RUNS, PrefectPause, TemporalWorkflow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.services.nudge_notice import NudgeKind, nudge_body
from awaithumans.server.services.nudge_plan import escalated_routes

WEBHOOK = "webhook"
NOTIFY = "notify"
#: A submitted answer's check by the task's verifier (target: the provider).
VERIFY = "verify"
TEMPORAL = TemporalWorkflow.KEY
PREFECT = PrefectPause.KEY

#: The event of the notification that asks a person to act; every other event announces
#: an ending (``task.completed``, ``task.timed_out``, ...).
CREATED_EVENT = "task.created"


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
        outbox_values(task_id, NOTIFY, route, {"event": CREATED_EVENT}) for route in notify or ()
    ]


def nudge_rows(
    task_id: str,
    routes: Sequence[str],
    kind: NudgeKind,
    *,
    step: int,
    after_seconds: int,
    business_hours: bool,
) -> list[dict[str, Any]]:
    """A reminder's or an escalation's notification jobs: the ask again, to ``routes``,
    marked as the nudge it is (``services/nudge_notice.py`` says what people read)."""
    body = nudge_body(CREATED_EVENT, kind, step, after_seconds, business_hours)
    return [outbox_values(task_id, NOTIFY, route, dict(body)) for route in routes]


#: The event of a verification job: an answer was submitted and waits for its verdict.
SUBMITTED_EVENT = "task.submitted"


def verify_rows(task: TaskRecord) -> list[dict[str, Any]]:
    """The verification job of a task just moved to ``submitted``.

    ``attempt`` is the attempt this answer is: a job that finds the task's count moved on
    (a verdict already landed for that answer) has nothing left to do.
    """
    config = task.verifier_config
    if not config:
        return []
    body = {"event": SUBMITTED_EVENT, "attempt": task.verification_attempt + 1}
    return [outbox_values(task.id, VERIFY, str(config.get("provider", "")), body)]


def terminal_rows(
    task: TaskRecord, *, engines: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The jobs a task's end triggers: its webhook, a close-out for each notify route (and
    each ``escalate_to`` route once it was escalated), and a direct delivery into each
    workflow engine in ``engines`` that the task waits in.

    The bodies hold only the event name; the dispatcher builds the full payload from the
    task row at delivery, so the answer never sits unencrypted in the outbox.
    """
    event = f"task.{task.status.value}"
    rows = []
    if task.callback_url:
        rows.append(outbox_values(task.id, WEBHOOK, task.callback_url, {"event": event}))
    # An escalation asked more routes; their messages are closed as the task's own are.
    routes = list(task.notify or ())
    routes += [r for r in escalated_routes(task) if r not in routes]
    rows.extend(outbox_values(task.id, NOTIFY, route, {"event": event}) for route in routes)
    # The server delivers into the engine itself (it knows the engine's address); without
    # that, a relay behind callback_url carries the event.
    for engine in (TEMPORAL, PREFECT):
        run = WAITING_RUNS[engine].from_metadata(task.task_metadata) if engine in engines else None
        if run is not None:
            rows.append(outbox_values(task.id, engine, run.address, {"event": event}))
    return rows
