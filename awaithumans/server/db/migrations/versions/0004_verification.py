"""verification: the answer under check, the last verdict's reason, a provider's trouble

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("submission_enc", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("verification_reason", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "verification_error",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("verification_error")
        batch.drop_column("verification_reason")
        batch.drop_column("submission_enc")
