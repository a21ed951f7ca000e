"""email identities: senders a route names (email+NAME:...), secrets sealed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_identities",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("from_address", sa.String(254), nullable=False),
        sa.Column("from_name", sa.String(200), nullable=True),
        sa.Column("reply_to", sa.String(254), nullable=True),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("smtp_host", sa.String(255), nullable=True),
        sa.Column("smtp_port", sa.Integer(), nullable=True),
        sa.Column("smtp_username", sa.String(254), nullable=True),
        sa.Column("smtp_start_tls", sa.Boolean(), nullable=False),
        sa.Column("smtp_use_tls", sa.Boolean(), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("email_identities")
