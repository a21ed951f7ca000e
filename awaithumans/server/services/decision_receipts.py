"""The receipt a final answer carries, made as the answer is decided.

Called from a move's ``derive`` (``Complete``, and ``ApplyVerdict`` when the verifier
passes an answer), so it covers the task as read in the transaction that completes it: what
the person was shown is named by the hash made when the task was created (its payload, form
and response schema never change; ``tasks.shown_sha256``), and the receipt is stored on it in
the same update (``tasks.receipt``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awaithumans.core._receipts import shown_sha256
from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.security.receipts import decision_receipt, signer_for
from awaithumans.server.services.views import open_for


def completion_values(
    ctx: ServerContext,
    task: TaskRecord,
    *,
    response: dict[str, Any],
    answered_by: Mapping[str, str | None],
    channel: str,
) -> dict[str, Any]:
    """``completed_at`` and the signed ``receipt`` of ``task`` completed with ``response``.

    Both carry the same instant, so the receipt's ``at`` is the task's ``completed_at``.
    """
    at = utcnow()
    receipt = decision_receipt(
        signer_for(ctx.keyring),
        task_id=task.id,
        task=task.task,
        shown=task.shown_sha256 or _shown(ctx, task),
        response=response,
        answered_by=answered_by,
        channel=channel,
        status=TaskStatus.COMPLETED.value,
        at=at,
    )
    return {"completed_at": at, "receipt": receipt}


def _shown(ctx: ServerContext, task: TaskRecord) -> str:
    """What a task created before migration 0013 showed, hashed now."""
    payload = open_for(ctx.sealer, task.id, task.payload_enc)
    return shown_sha256(payload, task.form_definition, task.response_schema)
