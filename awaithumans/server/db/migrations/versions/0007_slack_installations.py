"""slack installations: workspaces installed through OAuth, bot tokens sealed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_installations",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("team_name", sa.String(200), nullable=True),
        sa.Column("bot_user_id", sa.String(32), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("token_enc", sa.LargeBinary(), nullable=False),
        sa.Column("installed_by", sa.String(64), nullable=True),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_installations")
