"""First to claim: ``assign_to={"emails": [a, b, ...]}`` offers a task to each listed person.

Why a separate notion from the assignee and the approvers: an agent that lists several
people wants whichever of them is free to take the task, and then only that one to work
on it. So while the task has no assignee, every listed directory user (a *candidate*)
sees it in their queue and may claim it or answer it; answering claims it in the same
write (:func:`taking`, applied by ``task_actions.TaskAction`` on the row the
compare-and-set updates, so two candidates racing on two replicas cannot both win). Once
someone has it, it is theirs like any assigned task: the other candidates still open it
(to be told who took it, rather than "no such task") but it leaves their queue and they
may neither claim nor answer it. Approvers differ: they may answer whoever claimed.

The candidates are the listed addresses found active in the directory when the task is
created, kept as user ids under ``"candidates"`` in the task's stored policy JSON (no
column of their own: only these tasks carry the key, and the queue finds them with the
same JSON text match the approvers' queue uses). A listed person who is away is replaced by
their delegate (``services/delegation.py``), as a task assigned to them would be, and the
created audit row says so. A list of one address, or a task whose
listed people vote (``approvals_required`` > 1, ``services/votes.py``), is not offered:
the first pins that person as before, the second makes them all voters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from awaithumans.core._wire import TaskStatus
from awaithumans.server.db.models import TaskRow, UserRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.principals import Principal
from awaithumans.server.services.delegation import Delegated

#: The key of ``tasks.policy`` that holds the candidates' user ids.
KEY = "candidates"

#: The moves by which a candidate takes the task (claiming it, or answering it).
TAKING_MOVES = frozenset({TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED, TaskStatus.COMPLETED})


def listed(
    assign_to: Mapping[str, Any] | None, stored_policy: Mapping[str, Any] | None
) -> list[str]:
    """The distinct addresses a create offers its task to, in order; [] when it is not a
    first-to-claim task (fewer than two addresses, another shape, or a vote)."""
    if not assign_to or not isinstance(assign_to.get("emails"), list):
        return []
    if stored_policy and int(stored_policy.get("approvals_required", 1)) > 1:
        return []
    emails = list(dict.fromkeys(e.strip().lower() for e in assign_to["emails"]))
    return emails if len(emails) > 1 else []


async def known_users(conn: AsyncConnection, emails: set[str]) -> dict[str, str]:
    """Active directory users among ``emails``: email -> user id."""
    if not emails:
        return {}
    rows = await conn.execute(
        select(UserRow.email, UserRow.id).where(
            UserRow.email.in_(sorted(emails)), UserRow.is_active.is_(True)
        )
    )
    return {r.email: r.id for r in rows if r.email}


def offer(
    emails: Sequence[str],
    known: Mapping[str, str],
    stored_policy: Mapping[str, Any] | None,
    stand_ins: Mapping[str, Delegated] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(policy to store, the created audit row's detail) for a task offered to ``emails``;
    ``stand_ins``: the delegations of those of them who are away now."""
    stand_ins = stand_ins or {}
    listed_ids = [known[e] for e in emails if e in known]
    ids = list(dict.fromkeys(stand_ins[u].delegate if u in stand_ins else u for u in listed_ids))
    unknown = [e for e in emails if e not in known]
    handed = [stand_ins[u] for u in dict.fromkeys(listed_ids) if u in stand_ins]
    if ids:
        whom = "1 person" if len(ids) == 1 else f"{len(ids)} people"
        message = f"Offered to {whom}: the first to claim or answer it takes it."
    else:
        # As for a role nobody holds: the ask is kept, operators see it and can assign it.
        message = "None of the listed people is in the directory: unassigned, open to operators."
    for found in handed:
        first, last = found.hops[0], found.hops[-1]
        message += f" {first.source_label} is away: offered to {last.target_label} instead."
    if unknown:
        message += f" Not in the directory: {', '.join(unknown)}."
    detail: dict[str, Any] = {KEY: ids, "assigned_to": None, "message": message}
    if handed:
        detail["delegated"] = [h.detail() for found in handed for h in found.hops]
    return {**(stored_policy or {}), KEY: ids}, detail


def candidates_of(task: TaskRecord) -> frozenset[str]:
    """The user ids ``task`` is offered to (none for most tasks)."""
    found = (task.policy or {}).get(KEY)
    return frozenset(found) if isinstance(found, list) else frozenset()


def is_candidate(principal: Principal, task: TaskRecord) -> bool:
    return principal.kind == "user" and principal.id in candidates_of(task)


def may_take(principal: Principal, task: TaskRecord) -> bool:
    """Whether ``principal`` may claim or answer ``task`` as one of its candidates: nobody
    has taken it yet."""
    return task.assigned_to_user_id is None and is_candidate(principal, task)


def sees_as_candidate(principal: Principal, task: TaskRecord) -> bool:
    """A candidate sees the task, taken or not (a handoff session only its one task)."""
    if principal.scope_task_id is not None and principal.scope_task_id != task.id:
        return False
    return is_candidate(principal, task)


def taking(actor: Principal, task: TaskRecord, to: TaskStatus) -> dict[str, Any]:
    """The assignee a move sets when a candidate claims or answers an untaken task."""
    if to in TAKING_MOVES and may_take(actor, task):
        return {"assigned_to_user_id": actor.id}
    return {}


def offered_condition(principal: Principal) -> ColumnElement[bool] | None:
    """A SQL condition true for the untaken tasks offered to ``principal`` (the queue)."""
    if principal.kind != "user":
        return None
    return and_(
        TaskRow.assigned_to_user_id.is_(None),
        cast(TaskRow.policy, String).contains(json.dumps(principal.id), autoescape=True),
    )


async def taker(engine: AsyncEngine, who: Principal, task: TaskRecord | None) -> str | None:
    """The name of whoever took ``task`` from ``who``, one of its other candidates; None when
    ``who`` lost nothing to anyone (not a candidate, or the task is untaken or theirs)."""
    if task is None or not is_candidate(who, task):
        return None
    assignee = task.assigned_to_user_id
    if assignee is None or assignee == who.id:
        return None
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(UserRow.display_name, UserRow.email).where(UserRow.id == assignee)
            )
        ).one_or_none()
    if row is None:
        return "Someone else"
    return str(row.display_name or row.email or "Someone else")
