"""The database schema. Alembic migrations in ``migrations/`` create exactly this."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from awaithumans.server.db.types import JSONType, UTCDateTime

# One literal, shared by the partial indexes on both dialects.
OPEN_TASK_CONDITION = (
    "status NOT IN ('completed', 'timed_out', 'cancelled', 'verification_exhausted')"
)
# Its complement, for the dashboard's list of finished tasks. Spelled as NOT IN the open
# statuses on purpose: an IN list can be served by ix_tasks_status, which SQLite (it has no
# statistics unless someone runs ANALYZE) then prefers, sorting every finished task to find
# the newest 50; NOT IN leaves it only ix_tasks_finished_updated, read in order.
FINISHED_TASK_CONDITION = (
    "status NOT IN ('created', 'notified', 'assigned', 'in_progress', 'submitted', 'rejected')"
)


class Base(DeclarativeBase):
    pass


def _owner_scope(context: DefaultExecutionContext) -> str:
    """A task's idempotency scope when an insert names none: the credential creating it."""
    # (Seeding scripts and tests insert rows directly; the API always names the scope.)
    params = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return str(params["owner_id"])


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # A key names one task per scope: the credential that created it ("agent:key_…",
    # "user:usr_…", "admin:admin"; "legacy" for rows from before migration 0010 whose
    # creator was not recorded). Another agent's key, however predictable
    # ("refund:{order.id}"), is another task: it can neither block nor reveal this one.
    idempotency_scope: Mapped[str] = mapped_column(String(64), default=_owner_scope)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    task: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    # Payload and response are sealed with AES-GCM (key derived from AWAITHUMANS_PAYLOAD_KEY).
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    response_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    payload_schema: Mapped[dict[str, Any]] = mapped_column(JSONType)
    response_schema: Mapped[dict[str, Any]] = mapped_column(JSONType)
    form_definition: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    timeout_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assign_to: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    assigned_to_user_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id"), nullable=True, index=True
    )
    notify: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    verifier_config: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    redact_payload: Mapped[bool] = mapped_column(Boolean, default=False)
    callback_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    task_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    initial_response: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    verification_attempt: Mapped[int] = mapped_column(Integer, default=0)
    # The answer under verification (and, once rejected, the one the human may correct),
    # sealed like the response: {"response"|"text", "by", "channel"} (migration 0004).
    submission_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The last verdict's reason, shown to the human; a provider's trouble while it lasts.
    verification_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    verification_error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    timed_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Indexed for a reviewer's audit list, "what I answered" (migration 0002).
    completed_by_user_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    completed_by_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    completed_by_display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    completed_via_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Decision policies (migration 0012): the response applied if nobody answers in time
    # (sealed), the final decision's signed receipt, and the hash of the newest audit row.
    on_timeout_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    audit_head: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The hash a receipt gives of what the person is shown, made at creation (migration 0013).
    shown_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Approval policies (migration 0014): who may answer and how many must approve, and the
    # reminder/escalation plan (see ``services.policy``); the scheduler's next step of that
    # plan and how many steps happened (a step is a compare-and-set on ``nudges_done``);
    # when a person first opened the task.
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    next_nudge_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    nudges_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("idempotency_scope", "idempotency_key", name="uq_tasks_idempotency"),
        # The timeout scheduler asks "which open task is due next?" many times a day; only
        # open tasks belong in that index.
        Index(
            "ix_tasks_open_timeout_at",
            "timeout_at",
            sqlite_where=text(OPEN_TASK_CONDITION),
            postgresql_where=text(OPEN_TASK_CONDITION),
        ),
        # The reminder/escalation scheduler's "which open task is due for a nudge next?".
        Index(
            "ix_tasks_open_next_nudge_at",
            "next_nudge_at",
            sqlite_where=text(f"next_nudge_at IS NOT NULL AND {OPEN_TASK_CONDITION}"),
            postgresql_where=text(f"next_nudge_at IS NOT NULL AND {OPEN_TASK_CONDITION}"),
        ),
        # The dashboard's queue (open tasks, newest first) and audit list (finished tasks,
        # most recently finished first) page through these in order, 50 rows at a time,
        # however many tasks the table holds (migration 0002).
        Index(
            "ix_tasks_open_created",
            "created_at",
            "id",
            sqlite_where=text(OPEN_TASK_CONDITION),
            postgresql_where=text(OPEN_TASK_CONDITION),
        ),
        # A reviewer's queue, "assigned to me" and "unassigned": the same, per assignee.
        Index(
            "ix_tasks_open_assignee_created",
            "assigned_to_user_id",
            "created_at",
            "id",
            sqlite_where=text(OPEN_TASK_CONDITION),
            postgresql_where=text(OPEN_TASK_CONDITION),
        ),
        Index(
            "ix_tasks_finished_updated",
            "updated_at",
            "id",
            sqlite_where=text(FINISHED_TASK_CONDITION),
            postgresql_where=text(FINISHED_TASK_CONDITION),
        ),
    )


class AuditRow(Base):
    __tablename__ = "task_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(32), ForeignKey("tasks.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_status: Mapped[str] = mapped_column(String(32))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor_label: Mapped[str | None] = mapped_column(String(254), nullable=True)
    channel: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    # Covers this row and the task's previous row's chain_hash (migration 0012).
    chain_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class OutboxRow(Base):
    """Work that must happen at least once after a commit: webhooks and notifications."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    task_id: Mapped[str] = mapped_column(String(32), ForeignKey("tasks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "webhook" | "notify"
    target: Mapped[str] = mapped_column(String(2048))
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))  # pending|delivered|skipped|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )


class DeliveryReceiptRow(Base):
    """Where a notification landed: enough for its channel to update it after the fact.

    Written with the outbox row's "delivered" in one transaction, from the ``receipt`` of
    the channel's ``Outcome``; handed back to the jobs that follow on the same route.
    """

    __tablename__ = "delivery_receipts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(32), ForeignKey("tasks.id"))
    outbox_id: Mapped[int] = mapped_column(Integer, ForeignKey("outbox.id"))
    route: Mapped[str] = mapped_column(String(300))
    channel: Mapped[str] = mapped_column(String(32))
    ref: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Finds the task from a reply to what was sent (migration 0006).
    locator: Mapped[str | None] = mapped_column(String(300), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_delivery_receipts_task_route", "task_id", "route"),)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    slack_user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the server added this person by itself: "email" for an address a task was
    # mailed to that was not in the directory yet (a passwordless reviewer; migration 0008).
    added_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Routing by role or pool picks the member assigned least recently; an away user's new
    # tasks go to their delegate until ``away_until`` (migration 0014).
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    away_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delegate_to_user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class UserMembershipRow(Base):
    """A directory user's role (``role:finance``) or pool (``pool:tier1``) (migration 0014)."""

    __tablename__ = "user_memberships"

    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "role" | "pool"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_user_memberships_kind_name", "kind", "name"),)


class TaskViewRow(Base):
    """Who opened which task's page (or Slack modal, or email answer page), first when
    (migration 0014). Telemetry and the bulk answer's "you opened it" rule; no audit row."""

    __tablename__ = "task_views"

    task_id: Mapped[str] = mapped_column(String(32), ForeignKey("tasks.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TaskVoteRow(Base):
    """One person's approval or rejection of a task that needs several (migration 0014).

    Unique per (task, person): a second vote by the same person is refused by the
    database, whichever replica or channel it came through. The answer is sealed like
    a task's response.
    """

    __tablename__ = "task_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(32), ForeignKey("tasks.id"))
    user_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    channel: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved: Mapped[bool] = mapped_column(Boolean)
    response_enc: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (UniqueConstraint("task_id", "user_id", name="uq_task_votes_person"),)


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A session opened by a signed handoff link is good for this one task (migration 0005).
    task_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AgentKeyRow(Base):
    __tablename__ = "agent_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ServerStateRow(Base):
    """Small key/value facts about this installation (e.g. the setup token's hash)."""

    __tablename__ = "server_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlackInstallationRow(Base):
    """A Slack workspace installed through OAuth. The bot token is sealed with the payload
    key (AES-GCM), bound to the team id (migration 0007)."""

    __tablename__ = "slack_installations"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bot_user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    scopes: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    installed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EmailIdentityRow(Base):
    """A sender a route names (``email+NAME:``): its From, and the relay or Resend account
    it sends through; the password or API key sealed with the payload key, bound to the
    name (migration 0009)."""

    __tablename__ = "email_identities"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    from_address: Mapped[str] = mapped_column(String(254))
    from_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reply_to: Mapped[str | None] = mapped_column(String(254), nullable=True)
    # "server": the server's own transport, with this From; or "smtp" / "resend".
    transport: Mapped[str] = mapped_column(String(16))
    smtp_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    smtp_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    smtp_username: Mapped[str | None] = mapped_column(String(254), nullable=True)
    smtp_start_tls: Mapped[bool] = mapped_column(Boolean, default=True)
    smtp_use_tls: Mapped[bool] = mapped_column(Boolean, default=False)
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
