"""receipt locators: find a task again from a reply (a Slack thread, an email reply)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_receipts") as batch:
        batch.add_column(sa.Column("locator", sa.String(300), nullable=True))
    op.create_index("ix_delivery_receipts_locator", "delivery_receipts", ["locator"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_delivery_receipts_locator", table_name="delivery_receipts")
    with op.batch_alter_table("delivery_receipts") as batch:
        batch.drop_column("locator")
