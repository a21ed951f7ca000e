"""The dashboard's change sequence, shared by every replica (PostgreSQL only).

Each task change takes the next number of this sequence inside its transaction and sends it
with its change notice (services/replicas.py), so every process counts changes alike and a
dashboard page can poll any replica with the number another one gave it. SQLite has one
process and keeps its count in memory.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE IF NOT EXISTS awaithumans_changes")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS awaithumans_changes")
