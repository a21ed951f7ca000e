"""tasks.shown_sha256: the hash of what the person is shown, made once at creation

A decision receipt names what the person answering was shown (payload, form, response
schema) by its SHA-256. Those never change after a task is created, so the hash is made
there, in the request that creates the task, rather than inside the write transaction that
completes it: for a payload near the size limit hashing took about 130 ms, during which no
other write could commit. Tasks from before this migration have none; their receipts hash
the stored payload when they complete, as before.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("shown_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("shown_sha256")
