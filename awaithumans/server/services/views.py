"""Task rows as the API shows them, and as the poll cache keeps them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from awaithumans.core._wire import ApprovalView, TaskStatus, TaskView
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.security import Sealer
from awaithumans.server.services.hub import Snapshot
from awaithumans.server.services.policy import policy_of


def task_aad(task_id: str) -> bytes:
    # Binding the ciphertext to its task id stops a row's sealed payload from being pasted
    # into another row and decrypting there.
    return task_id.encode()


def seal_for(sealer: Sealer, task_id: str, value: dict[str, Any]) -> bytes:
    return sealer.seal_json(value, aad=task_aad(task_id))


def open_for(sealer: Sealer, task_id: str, blob: bytes | None) -> dict[str, Any] | None:
    if blob is None:
        return None
    opened = sealer.open_json(blob, aad=task_aad(task_id))
    return opened if isinstance(opened, dict) else None


def snapshot_of(
    task: TaskRecord,
    response: dict[str, Any] | None,
    *,
    approvals: Sequence[ApprovalView] = (),
) -> Snapshot:
    """What the hub keeps of ``task``; ``approvals`` are its votes when it counts them."""
    return Snapshot(
        task_id=task.id,
        version=task.version,
        status=task.status,
        owner_id=task.owner_id,
        assigned_to_user_id=task.assigned_to_user_id,
        response=response,
        completed_at=task.completed_at,
        timed_out_at=task.timed_out_at,
        verification_attempt=task.verification_attempt,
        receipt=task.receipt,
        approvals_required=policy_of(task).approvals_required,
        approvals=tuple(approvals),
    )


def view_of(
    task: TaskRecord,
    sealer: Sealer,
    base_url: str,
    *,
    include_payload: bool = True,
    assigned_to_email: str | None = None,
    payload: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    approvals: Sequence[ApprovalView] | None = None,
) -> TaskView:
    """Build the API view; ``payload``/``response`` skip decryption when already known.

    ``approvals``: the task's votes, when it counts them and they were read
    (``services.votes``); a task that counts none shows an empty list.
    """
    required = policy_of(task).approvals_required
    if approvals is None and required == 1:
        approvals = ()
    task_id = task.id
    if include_payload and payload is None:
        payload = open_for(sealer, task_id, task.payload_enc)
    if response is None:
        response = open_for(sealer, task_id, task.response_enc)
    return TaskView(
        id=task_id,
        review_url=f"{base_url}/task?id={task_id}",
        idempotency_key=task.idempotency_key,
        task=task.task,
        status=task.status,
        payload=payload if include_payload else None,
        payload_schema=task.payload_schema,
        response_schema=task.response_schema,
        form_definition=task.form_definition,
        timeout_seconds=task.timeout_seconds,
        timeout_at=task.timeout_at,
        assign_to=task.assign_to,
        assigned_to_user_id=task.assigned_to_user_id,
        assigned_to_email=assigned_to_email,
        notify=task.notify,
        verifier_config=task.verifier_config,
        redact_payload=task.redact_payload,
        callback_url=task.callback_url,
        task_metadata=task.task_metadata,
        initial_response=task.initial_response,
        response=response,
        verification_attempt=task.verification_attempt,
        verification_reason=task.verification_reason,
        verification_error=task.verification_error,
        created_at=task.created_at,
        updated_at=task.updated_at,
        completed_at=task.completed_at,
        timed_out_at=task.timed_out_at,
        completed_by_user_id=task.completed_by_user_id,
        completed_by_email=task.completed_by_email,
        completed_by_display_name=task.completed_by_display_name,
        completed_via_channel=task.completed_via_channel,
        default_applied=default_applied(task.status, response),
        receipt=task.receipt,
        approvals_required=required,
        approvals=list(approvals) if approvals is not None else None,
    )


def default_applied(status: TaskStatus, response: dict[str, Any] | None) -> bool:
    """A timed-out task has a response only when its ``on_timeout`` default was applied."""
    return status is TaskStatus.TIMED_OUT and response is not None
