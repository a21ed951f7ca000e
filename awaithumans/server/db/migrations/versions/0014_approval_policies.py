"""Columns for the approval policies of issue 17: who may answer, how many, and when to nudge

- ``tasks.policy``: the policy an agent chose at create (allowed approvers, approvals
  required, rejection rule, reminders, escalation), as JSON; None for a plain task.
- ``tasks.next_nudge_at`` / ``tasks.nudges_done``: the scheduler's next reminder or
  escalation and how many steps of the task's plan have happened. A step is taken with a
  compare-and-set on ``nudges_done``, so it happens once however many replicas look.
- ``tasks.first_viewed_at``: when a person first opened the task (time to first view);
  ``task_views``: who opened which task, first when (bulk answers need the reviewer to
  have opened each task).
- ``task_votes``: one row per person who approved or rejected a task that needs several
  approvals; unique per (task, person), so a second vote by the same person cannot count.
- ``users.last_assigned_at``: routing by role or pool picks the least recently assigned.
- ``users.away_until`` / ``users.delegate_to_user_id``: delegation while someone is away.
- ``user_memberships``: the roles and pools a directory user belongs to.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_OPEN = "status NOT IN ('completed', 'timed_out', 'cancelled', 'verification_exhausted')"
_DUE = f"next_nudge_at IS NOT NULL AND {_OPEN}"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("policy", _JSON, nullable=True))
        batch.add_column(sa.Column("next_nudge_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("nudges_done", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("first_viewed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_tasks_open_next_nudge_at",
        "tasks",
        ["next_nudge_at"],
        sqlite_where=sa.text(_DUE),
        postgresql_where=sa.text(_DUE),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("away_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delegate_to_user_id", sa.String(32), nullable=True))
    op.create_table(
        "user_memberships",
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
    )
    op.create_index("ix_user_memberships_kind_name", "user_memberships", ["kind", "name"])
    op.create_table(
        "task_views",
        sa.Column("task_id", sa.String(32), sa.ForeignKey("tasks.id"), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "task_votes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(32), sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("response_enc", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("task_id", "user_id", name="uq_task_votes_person"),
    )


def downgrade() -> None:
    op.drop_table("task_votes")
    op.drop_table("task_views")
    op.drop_index("ix_user_memberships_kind_name", table_name="user_memberships")
    op.drop_table("user_memberships")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("delegate_to_user_id")
        batch.drop_column("away_until")
        batch.drop_column("last_assigned_at")
    op.drop_index("ix_tasks_open_next_nudge_at", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("first_viewed_at")
        batch.drop_column("nudges_done")
        batch.drop_column("next_nudge_at")
        batch.drop_column("policy")
