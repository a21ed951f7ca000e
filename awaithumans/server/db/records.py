"""Rows as the rest of the server sees them: frozen, typed records.

A row leaves the database layer as a record built by ``from_row``; services, channels and
pages read attributes (``task.status`` is a :class:`TaskStatus`, ``task.timeout_at`` an
aware datetime), never string keys, so a misspelt column is a type error rather than a
``KeyError`` at run time. A changed task is a new record (:meth:`TaskRecord.with_values`);
nothing edits a record in place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from awaithumans.core._wire import TaskStatus


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One row of ``tasks``. Payload and response stay sealed (see ``services.views``)."""

    id: str
    idempotency_scope: str
    idempotency_key: str
    fingerprint: str
    owner_id: str
    task: str
    status: TaskStatus
    version: int
    payload_enc: bytes
    response_enc: bytes | None
    payload_schema: dict[str, Any]
    response_schema: dict[str, Any]
    form_definition: dict[str, Any] | None
    timeout_seconds: int
    timeout_at: datetime
    assign_to: dict[str, Any] | None
    assigned_to_user_id: str | None
    notify: list[str] | None
    verifier_config: dict[str, Any] | None
    redact_payload: bool
    callback_url: str | None
    task_metadata: dict[str, Any] | None
    initial_response: dict[str, Any] | None
    verification_attempt: int
    submission_enc: bytes | None
    verification_reason: str | None
    verification_error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    timed_out_at: datetime | None
    completed_by_user_id: str | None
    completed_by_email: str | None
    completed_by_display_name: str | None
    completed_via_channel: str | None
    on_timeout_enc: bytes | None = None
    receipt: dict[str, Any] | None = None
    audit_head: str | None = None
    shown_sha256: str | None = None
    policy: dict[str, Any] | None = None
    next_nudge_at: datetime | None = None
    nudges_done: int = 0
    first_viewed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> TaskRecord:
        """From a row of ``select(TaskRow)`` (or the values of an insert); extra keys ignored."""
        values = {name: row[name] for name in _TASK_REQUIRED}
        # Columns added later (with a default here) may be absent from an insert's values.
        values.update({name: row.get(name, default) for name, default in _TASK_OPTIONAL.items()})
        values["status"] = TaskStatus(values["status"])
        return cls(**values)

    def row_values(self) -> dict[str, Any]:
        """The column values, as an insert takes them."""
        values = {name: getattr(self, name) for name in _TASK_COLUMNS}
        values["status"] = self.status.value
        return values

    def with_values(self, changes: Mapping[str, Any]) -> TaskRecord:
        """This task after an update that set ``changes`` (column names, stored values)."""
        updated = dict(changes)
        if "status" in updated:
            updated["status"] = TaskStatus(updated["status"])
        return dataclasses.replace(self, **updated)

    @property
    def terminal(self) -> bool:
        return self.status.is_terminal


_TASK_COLUMNS = tuple(f.name for f in dataclasses.fields(TaskRecord))
_TASK_OPTIONAL = {
    f.name: f.default
    for f in dataclasses.fields(TaskRecord)
    if f.default is not dataclasses.MISSING
}
_TASK_REQUIRED = tuple(name for name in _TASK_COLUMNS if name not in _TASK_OPTIONAL)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of ``task_audit``: a status change, who made it and through which channel."""

    id: int
    task_id: str
    at: datetime
    action: str
    from_status: TaskStatus | None
    to_status: TaskStatus
    actor_type: str
    actor_id: str | None
    actor_label: str | None
    channel: str
    detail: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AuditRecord:
        before = row["from_status"]
        return cls(
            id=row["id"],
            task_id=row["task_id"],
            at=row["at"],
            action=row["action"],
            from_status=TaskStatus(before) if before is not None else None,
            to_status=TaskStatus(row["to_status"]),
            actor_type=row["actor_type"],
            actor_id=row["actor_id"],
            actor_label=row["actor_label"],
            channel=row["channel"],
            detail=row["detail"],
        )


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One row of ``outbox``: a delivery owed after a commit."""

    id: int
    event_id: str
    task_id: str
    kind: str
    target: str
    body: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_until: datetime | None
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> OutboxRecord:
        return cls(**{name: row[name] for name in _OUTBOX_COLUMNS})

    @property
    def event(self) -> str:
        """The event it announces, e.g. ``task.created`` or ``task.completed``."""
        return str(self.body.get("event", ""))


_OUTBOX_COLUMNS = tuple(f.name for f in dataclasses.fields(OutboxRecord))
