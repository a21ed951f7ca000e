"""Roles and pools of directory users (``user_memberships``, migration 0014).

A role says what someone may decide (``role:finance`` among a task's approvers); a pool is
a queue of interchangeable people (``assign_to={"pool": "tier1"}`` picks one). Both are
plain lowercase names (:data:`services.policy.GROUP_NAME`) held per user.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.server.db.models import UserMembershipRow


@dataclass(frozen=True, slots=True)
class Groups:
    """The roles and pools one person belongs to."""

    roles: frozenset[str] = frozenset()
    pools: frozenset[str] = frozenset()


async def groups_of(conn: AsyncConnection, user_id: str) -> Groups:
    rows = (
        await conn.execute(
            select(UserMembershipRow.kind, UserMembershipRow.name).where(
                UserMembershipRow.user_id == user_id
            )
        )
    ).all()
    return Groups(
        roles=frozenset(r.name for r in rows if r.kind == "role"),
        pools=frozenset(r.name for r in rows if r.kind == "pool"),
    )
