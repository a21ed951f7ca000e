"""Task rows as the API shows them, and as the poll cache keeps them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awaithumans.core._wire import TaskStatus, TaskView
from awaithumans.server.security import Sealer
from awaithumans.server.services.hub import Snapshot


def _aad(task_id: str) -> bytes:
    # Binding the ciphertext to its task id stops a row's sealed payload from being pasted
    # into another row and decrypting there.
    return task_id.encode()


def seal_for(sealer: Sealer, task_id: str, value: dict[str, Any]) -> bytes:
    return sealer.seal_json(value, aad=_aad(task_id))


def open_for(sealer: Sealer, task_id: str, blob: bytes | None) -> dict[str, Any] | None:
    if blob is None:
        return None
    opened = sealer.open_json(blob, aad=_aad(task_id))
    return opened if isinstance(opened, dict) else None


def snapshot_of(row: Mapping[str, Any], response: dict[str, Any] | None) -> Snapshot:
    return Snapshot(
        task_id=row["id"],
        version=row["version"],
        status=TaskStatus(row["status"]),
        owner_id=row["owner_id"],
        assigned_to_user_id=row["assigned_to_user_id"],
        response=response,
        completed_at=row["completed_at"],
        timed_out_at=row["timed_out_at"],
        verification_attempt=row["verification_attempt"],
    )


def view_of(
    row: Mapping[str, Any],
    sealer: Sealer,
    base_url: str,
    *,
    include_payload: bool = True,
    assigned_to_email: str | None = None,
    payload: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
) -> TaskView:
    """Build the API view; ``payload``/``response`` skip decryption when already known."""
    task_id = row["id"]
    if include_payload and payload is None:
        payload = open_for(sealer, task_id, row["payload_enc"])
    if response is None:
        response = open_for(sealer, task_id, row["response_enc"])
    return TaskView(
        id=task_id,
        review_url=f"{base_url}/task?id={task_id}",
        idempotency_key=row["idempotency_key"],
        task=row["task"],
        status=TaskStatus(row["status"]),
        payload=payload if include_payload else None,
        payload_schema=row["payload_schema"],
        response_schema=row["response_schema"],
        form_definition=row["form_definition"],
        timeout_seconds=row["timeout_seconds"],
        timeout_at=row["timeout_at"],
        assign_to=row["assign_to"],
        assigned_to_user_id=row["assigned_to_user_id"],
        assigned_to_email=assigned_to_email,
        notify=row["notify"],
        verifier_config=row["verifier_config"],
        redact_payload=row["redact_payload"],
        callback_url=row["callback_url"],
        task_metadata=row["task_metadata"],
        initial_response=row["initial_response"],
        response=response,
        verification_attempt=row["verification_attempt"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
        timed_out_at=row["timed_out_at"],
        completed_by_user_id=row["completed_by_user_id"],
        completed_by_email=row["completed_by_email"],
        completed_by_display_name=row["completed_by_display_name"],
        completed_via_channel=row["completed_via_channel"],
    )
