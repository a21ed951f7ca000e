"""Columns for decision policies (issue 17): receipts, the audit chain, timeout defaults

- ``tasks.on_timeout_enc``: the response an agent chose to get if nobody answers in time,
  sealed like the answer; a timeout then records it (``on_timeout=`` in the SDK).
- ``tasks.receipt``: the signed receipt of the final decision (Ed25519), as the SDK and
  ``awaithumans verify-receipt`` check it.
- ``tasks.audit_head`` and ``task_audit.chain_hash``: each audit row's hash covers the one
  before it on the same task, so an edited or deleted row breaks the chain; the task keeps
  the newest hash so a transition extends the chain without reading the trail. Rows from
  before this migration have no hash and the chain starts after them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("on_timeout_enc", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("receipt", _JSON, nullable=True))
        batch.add_column(sa.Column("audit_head", sa.String(64), nullable=True))
    with op.batch_alter_table("task_audit") as batch:
        batch.add_column(sa.Column("chain_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_audit") as batch:
        batch.drop_column("chain_hash")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("audit_head")
        batch.drop_column("receipt")
        batch.drop_column("on_timeout_enc")
