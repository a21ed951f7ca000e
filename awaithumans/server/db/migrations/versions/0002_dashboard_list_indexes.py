"""dashboard list indexes: open tasks by creation (all, per assignee), finished by finish time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Literal copies of models.OPEN_TASK_CONDITION / FINISHED_TASK_CONDITION: a migration must
# keep creating what it created on the day it was written.
_OPEN = "status NOT IN ('completed', 'timed_out', 'cancelled', 'verification_exhausted')"
_FINISHED = (
    "status NOT IN ('created', 'notified', 'assigned', 'in_progress', 'submitted', 'rejected')"
)


def upgrade() -> None:
    op.create_index(
        "ix_tasks_open_created",
        "tasks",
        ["created_at", "id"],
        unique=False,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_index(
        "ix_tasks_open_assignee_created",
        "tasks",
        ["assigned_to_user_id", "created_at", "id"],
        unique=False,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_index(
        "ix_tasks_completed_by_user_id", "tasks", ["completed_by_user_id"], unique=False
    )
    op.create_index(
        "ix_tasks_finished_updated",
        "tasks",
        ["updated_at", "id"],
        unique=False,
        sqlite_where=sa.text(_FINISHED),
        postgresql_where=sa.text(_FINISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_finished_updated", table_name="tasks")
    op.drop_index("ix_tasks_completed_by_user_id", table_name="tasks")
    op.drop_index("ix_tasks_open_assignee_created", table_name="tasks")
    op.drop_index("ix_tasks_open_created", table_name="tasks")
