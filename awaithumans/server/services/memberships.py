"""Roles and pools of directory users (``user_memberships``, migration 0014).

A role says what someone may decide (``role:finance`` among a task's approvers); a pool is
a queue of interchangeable people (``assign_to={"pool": "tier1"}`` picks one). Both are
plain lowercase names (:data:`services.policy.GROUP_NAME`) held per user. Either kind can
route a task (``assign_to={"role": ...}`` too): ``services/routing.py`` picks the member.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._codes import ErrorCode
from awaithumans.server.db.models import UserMembershipRow
from awaithumans.server.errors import ApiError
from awaithumans.server.services.policy import GROUP_NAME

GroupKind = Literal["role", "pool"]
KINDS: tuple[GroupKind, ...] = ("role", "pool")

#: Per person and kind: a directory entry, not a tagging system (and a bounded request).
MAX_GROUPS = 50


@dataclass(frozen=True, slots=True)
class Groups:
    """The roles and pools one person belongs to."""

    roles: frozenset[str] = frozenset()
    pools: frozenset[str] = frozenset()


async def groups_of(conn: AsyncConnection, user_id: str) -> Groups:
    return (await groups_of_users(conn, [user_id])).get(user_id, Groups())


async def groups_of_users(conn: AsyncConnection, user_ids: Iterable[str]) -> dict[str, Groups]:
    """Everyone's roles and pools in one query (the users list); absent ids have none."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = (
        await conn.execute(
            select(UserMembershipRow.user_id, UserMembershipRow.kind, UserMembershipRow.name)
            .where(UserMembershipRow.user_id.in_(wanted))
            .order_by(UserMembershipRow.name)
        )
    ).all()
    found: dict[str, tuple[set[str], set[str]]] = {}
    for r in rows:
        roles, pools = found.setdefault(r.user_id, (set(), set()))
        (roles if r.kind == "role" else pools).add(r.name)
    return {uid: Groups(frozenset(r), frozenset(p)) for uid, (r, p) in found.items()}


def clean_names(raw: Iterable[object], kind: GroupKind) -> list[str]:
    """The names as stored (deduplicated, sorted), surrounding spaces dropped.

    Names are not lowercased for the caller: ``role:Finance`` is refused among approvers,
    so accepting ``Finance`` here would make a role nobody could name.

    Raises:
        ApiError: 400 ``INVALID_MEMBERSHIP`` naming the first bad entry.
    """
    names: set[str] = set()
    for entry in raw:
        name = entry.strip() if isinstance(entry, str) else entry
        if not isinstance(name, str) or not GROUP_NAME.fullmatch(name):
            raise ApiError(
                400,
                ErrorCode.INVALID_MEMBERSHIP,
                f"{kind}s: {entry!r} is not a valid {kind} name (lowercase letters, digits, "
                "'.', '_', '-', starting with a letter or digit; up to 64 characters).",
            )
        names.add(name)
    if len(names) > MAX_GROUPS:
        raise ApiError(
            400,
            ErrorCode.INVALID_MEMBERSHIP,
            f"{kind}s: at most {MAX_GROUPS} per person, got {len(names)}.",
        )
    return sorted(names)


async def replace_groups(
    conn: AsyncConnection, user_id: str, kind: GroupKind, names: Iterable[str]
) -> None:
    """Make ``names`` the person's whole list of this kind (inside the caller's write)."""
    await conn.execute(
        delete(UserMembershipRow).where(
            UserMembershipRow.user_id == user_id, UserMembershipRow.kind == kind
        )
    )
    rows = [{"user_id": user_id, "kind": kind, "name": n} for n in sorted(set(names))]
    if rows:
        await conn.execute(insert(UserMembershipRow), rows)
