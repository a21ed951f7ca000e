"""tasks.idempotency_scope: an idempotency key names one task per creating credential

Before, a key was unique across the server: agent B sending agent A's key got A's 409, so B
could block A's predictable keys (``refund:{order.id}``) and learn which keys A had used.
Now the key is unique within its scope, the credential that created the task (``owner_id``,
recorded on every task since 0001); a row without one gets the scope ``legacy``. Keys were
unique across every row before, so no backfilled pair can collide.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

LEGACY_SCOPE = "legacy"
# The one unique constraint 0001 made, unnamed: PostgreSQL named it itself, SQLite did not
# name it at all. Batch mode (SQLite) names reflected unnamed constraints with this
# convention, so both can be dropped by name.
_OLD_UNIQUE = "uq_tasks_idempotency_key"
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique_name() -> str:
    for found in sa.inspect(op.get_bind()).get_unique_constraints("tasks"):
        if found["column_names"] == ["idempotency_key"] and found["name"]:
            return str(found["name"])
    return _OLD_UNIQUE


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("idempotency_scope", sa.String(64), nullable=True))
    tasks = sa.table(
        "tasks", sa.column("owner_id", sa.String), sa.column("idempotency_scope", sa.String)
    )
    op.execute(
        tasks.update().values(
            idempotency_scope=sa.case(
                (sa.func.coalesce(tasks.c.owner_id, "") == "", LEGACY_SCOPE),
                else_=tasks.c.owner_id,
            )
        )
    )
    old_name = _old_unique_name()
    with op.batch_alter_table("tasks", naming_convention=_CONVENTION) as batch:
        batch.alter_column("idempotency_scope", existing_type=sa.String(64), nullable=False)
        batch.drop_constraint(old_name, type_="unique")
        batch.create_unique_constraint(
            "uq_tasks_idempotency", ["idempotency_scope", "idempotency_key"]
        )


def downgrade() -> None:
    # Back to one key per server: impossible while two credentials share a key.
    tasks = sa.table("tasks", sa.column("idempotency_key", sa.String))
    shared = (
        op.get_bind()
        .execute(
            sa.select(tasks.c.idempotency_key)
            .group_by(tasks.c.idempotency_key)
            .having(sa.func.count() > 1)
            .limit(1)
        )
        .first()
    )
    if shared is not None:
        raise RuntimeError(
            f"cannot downgrade below 0010: idempotency key {shared[0]!r} names tasks of "
            "several credentials"
        )
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint("uq_tasks_idempotency", type_="unique")
        batch.create_unique_constraint(_OLD_UNIQUE, ["idempotency_key"])
        batch.drop_column("idempotency_scope")
