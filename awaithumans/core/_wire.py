"""The wire protocol shared by the SDK and the server: statuses, bodies and limits.

These models are the contract; the server validates requests with them and the SDK builds
requests from them, so the two can never drift apart.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MIN_TIMEOUT_SECONDS = 60
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_POLL_SECONDS = 30
TASK_ID_PREFIX = "tsk_"
#: The most approvals a task may require (``approvals_required``).
MAX_APPROVALS = 20


class TaskStatus(StrEnum):
    """Where a task stands. See ``awaithumans.server.services.lifecycle`` for the moves."""

    CREATED = "created"
    NOTIFIED = "notified"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    COMPLETED = "completed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    VERIFICATION_EXHAUSTED = "verification_exhausted"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.TIMED_OUT,
        TaskStatus.CANCELLED,
        TaskStatus.VERIFICATION_EXHAUSTED,
    }
)

TaskText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class CreateTaskRequest(BaseModel):
    """Body of ``POST /api/tasks``."""

    model_config = ConfigDict(extra="forbid")

    task: TaskText
    payload: dict[str, Any]
    payload_schema: dict[str, Any]
    response_schema: dict[str, Any]
    timeout_seconds: int = Field(ge=MIN_TIMEOUT_SECONDS, le=MAX_TIMEOUT_SECONDS)
    idempotency_key: IdempotencyKey
    form_definition: dict[str, Any] | None = None
    assign_to: dict[str, Any] | None = None
    notify: list[Annotated[str, StringConstraints(max_length=300)]] | None = Field(
        default=None, max_length=20
    )
    verifier_config: dict[str, Any] | None = None
    redact_payload: bool = False
    callback_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    task_metadata: dict[str, Any] | None = None
    initial_response: dict[str, Any] | None = None
    #: The answer to apply if nobody answers in time (the SDK's ``on_timeout=``); must
    #: fit ``response_schema``. None: the task just times out.
    on_timeout: dict[str, Any] | None = None
    # Approval policies (the SDK's parameters of the same names; durations in seconds).
    #: Who may answer: emails, ``role:NAME``, ``pool:NAME``. None: the assignee or anyone.
    approvers: list[Annotated[str, StringConstraints(min_length=1, max_length=254)]] | None = Field(
        default=None, max_length=50
    )
    operators_may_answer: bool = True
    approvals_required: int = Field(default=1, ge=1, le=MAX_APPROVALS)
    rejection_policy: Literal["any_rejects", "majority"] = "any_rejects"
    reminder_seconds: list[Annotated[int, Field(ge=60, le=MAX_TIMEOUT_SECONDS)]] | None = Field(
        default=None, max_length=20
    )
    escalate_after_seconds: int | None = Field(default=None, ge=60, le=MAX_TIMEOUT_SECONDS)
    escalate_to: list[Annotated[str, StringConstraints(max_length=300)]] | None = Field(
        default=None, max_length=20
    )
    escalate_reassign: bool = False

    def content_fingerprint(self) -> str:
        """Hash of everything that makes two creates "the same task" for idempotency.

        Stripe's rule: a replay with the same key must carry the same content. The
        fingerprint covers every field the caller chose, in canonical JSON.
        """
        content = self.model_dump(mode="json")
        for name, default in _ADDED_LATER.items():
            # Left out while at their default, so a task created before the field existed
            # still has the fingerprint a replay of its create computes now.
            if content.get(name) == default:
                content.pop(name, None)
        return fingerprint(content)


#: Fields added to the create after tasks were first fingerprinted, with their defaults.
_ADDED_LATER: dict[str, Any] = {
    "on_timeout": None,
    "approvers": None,
    "operators_may_answer": True,
    "approvals_required": 1,
    "rejection_policy": "any_rejects",
    "reminder_seconds": None,
    "escalate_after_seconds": None,
    "escalate_to": None,
    "escalate_reassign": False,
}


#: The longest free-text reply a verifier is asked to read.
MAX_REPLY_TEXT = 20_000


class CompleteTaskRequest(BaseModel):
    """Body of ``POST /api/tasks/{id}/complete``. Who answered comes from the credential.

    Either ``response`` (the structured answer) or ``text`` (a reply in the person's own
    words, for a task whose verifier parses natural language), not both.
    """

    model_config = ConfigDict(extra="ignore")

    response: dict[str, Any] | None = None
    text: str | None = Field(default=None, max_length=MAX_REPLY_TEXT)

    @model_validator(mode="after")
    def _one_of(self) -> CompleteTaskRequest:
        if (self.response is None) == (self.text is None):
            raise ValueError("give either 'response' or 'text'")
        return self


class ApprovalView(BaseModel):
    """One person's vote on a task that needs several approvals (``approvals_required``)."""

    user_id: str
    email: str | None = None
    display_name: str | None = None
    channel: str
    at: datetime
    #: The response's ``approved`` field: True approves, False rejects.
    approved: bool
    response: dict[str, Any] | None = None


class PollResponse(BaseModel):
    """Body of ``GET /api/tasks/{id}/poll``."""

    status: TaskStatus
    response: dict[str, Any] | None = None
    completed_at: datetime | None = None
    timed_out_at: datetime | None = None
    verification_attempt: int = 0
    #: Timed out with the task's ``on_timeout`` default applied: ``response`` is that
    #: default, not a person's answer.
    default_applied: bool = False
    #: A completed task's signed decision receipt (``awaithumans.verify_receipt``).
    receipt: dict[str, Any] | None = None
    #: How many approvals the task needs (1: a plain task, whose answer is no vote).
    approvals_required: int = 1
    #: The votes so far, oldest first (the deciding one last once the task is completed).
    approvals: list[ApprovalView] = Field(default_factory=list)


class TaskView(BaseModel):
    """A task as the API returns it."""

    id: str
    review_url: str | None = None
    idempotency_key: str
    task: str
    status: TaskStatus
    payload: dict[str, Any] | None = None
    payload_schema: dict[str, Any]
    response_schema: dict[str, Any]
    form_definition: dict[str, Any] | None = None
    timeout_seconds: int
    timeout_at: datetime
    assign_to: dict[str, Any] | None = None
    assigned_to_user_id: str | None = None
    assigned_to_email: str | None = None
    notify: list[str] | None = None
    verifier_config: dict[str, Any] | None = None
    redact_payload: bool = False
    callback_url: str | None = None
    task_metadata: dict[str, Any] | None = None
    initial_response: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    verification_attempt: int = 0
    #: Why the verifier last passed or rejected an answer (shown to the human).
    verification_reason: str | None = None
    #: While the verifier's provider fails: ``{"code", "message", "at", "tries"}``.
    verification_error: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    timed_out_at: datetime | None = None
    completed_by_user_id: str | None = None
    completed_by_email: str | None = None
    completed_by_display_name: str | None = None
    completed_via_channel: str | None = None
    #: Timed out with the ``on_timeout`` default applied (then ``response`` is that default).
    default_applied: bool = False
    #: The signed receipt of the final answer (completed tasks answered since receipts).
    receipt: dict[str, Any] | None = None
    #: How many approvals the task needs (1: a plain task, whose answer is no vote).
    approvals_required: int = 1
    #: The votes so far, oldest first; None where they were not read (task lists).
    approvals: list[ApprovalView] | None = None


class ErrorBody(BaseModel):
    """Every error response: ``{"error": CODE, "message": ...}`` plus optional details."""

    error: str
    message: str
    details: list[dict[str, Any]] | None = None


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces: the form both sides hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def derive_idempotency_key(task: str, payload: dict[str, Any]) -> str:
    """The key the published SDK derives when the caller gives none.

    sha256 of the canonical JSON ``{"task": ..., "payload": ...}``, first 32 hex characters;
    kept bit-for-bit so that a script moved from the old SDK resumes its old tasks.
    """
    return hashlib.sha256(
        json.dumps(
            {"task": task, "payload": payload}, sort_keys=True, separators=(",", ":")
        ).encode()
    ).hexdigest()[:32]
