"""Who may answer a task: its approvers (fail closed), else its assignee; and operators.

A task created with ``approvers=`` takes answers (and votes, and claims) only from a
directory user whose email is listed or who holds a listed role or pool, or from an
operator while ``operators_may_answer`` (the default) holds. The assignee is not exempt:
being assigned does not make someone an approver. Without approvers the plain rule
stands: the assignee, or an operator, or, while nobody has taken it, one of the people it
is offered to (``services/candidates.py``). Agent keys never answer.

The rule itself (:func:`answer_refusal`) is sync and takes the person's roles and pools
(:class:`memberships.Groups`) as read beforehand, so a writer job's ``check`` can apply it
again on the row it updates; :func:`groups_for` reads them only when the task's approvers
name a role or a pool.
"""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement, String, cast, or_
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.server.db.models import TaskRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.principals import Principal
from awaithumans.server.services.candidates import may_take
from awaithumans.server.services.memberships import Groups, groups_of
from awaithumans.server.services.policy import Approvers, policy_of

NO_GROUPS = Groups()

#: Refusal reasons, as writer jobs return them (``services.answers`` maps them to codes).
NOT_AN_APPROVER = "NOT_AN_APPROVER"
NOT_ASSIGNED_TO_YOU = "NOT_ASSIGNED_TO_YOU"


def is_listed(principal: Principal, groups: Groups, approvers: Approvers) -> bool:
    """Whether ``principal`` is a directory user that ``approvers`` names."""
    if principal.kind != "user":
        return False
    email = (principal.email or "").lower()
    if email and email in approvers.emails:
        return True
    return bool(groups.roles & approvers.roles or groups.pools & approvers.pools)


def answer_refusal(
    principal: Principal, task: TaskRecord, groups: Groups = NO_GROUPS
) -> str | None:
    """Why ``principal`` may not answer ``task`` (a reason code), or None when they may."""
    policy = policy_of(task)
    if policy.restricts_answerers:
        if principal.is_operator and policy.operators_may_answer:
            return None
        return None if is_listed(principal, groups, policy.approvers) else NOT_AN_APPROVER
    if principal.is_operator:
        return None
    if principal.kind == "user" and task.assigned_to_user_id == principal.id:
        return None
    if may_take(principal, task):  # offered to them, and nobody took it yet
        return None
    return NOT_ASSIGNED_TO_YOU


def sees_as_approver(principal: Principal, task: TaskRecord, groups: Groups) -> bool:
    """Whether a listed approver may see ``task`` although it is not assigned to them
    (a handoff session still sees only its one task)."""
    if principal.scope_task_id is not None and principal.scope_task_id != task.id:
        return False
    policy = policy_of(task)
    return policy.restricts_answerers and is_listed(principal, groups, policy.approvers)


async def groups_for(engine: AsyncEngine, principal: Principal, task: TaskRecord) -> Groups:
    """``principal``'s roles and pools, when ``task``'s approvers make them matter."""
    approvers = policy_of(task).approvers
    if principal.kind != "user" or not (approvers.roles or approvers.pools):
        return NO_GROUPS
    async with engine.connect() as conn:
        return await groups_of(conn, principal.id)


async def own_groups(engine: AsyncEngine, principal: Principal) -> Groups:
    """``principal``'s roles and pools, whatever the task (a directory user's; else none)."""
    if principal.kind != "user":
        return NO_GROUPS
    async with engine.connect() as conn:
        return await groups_of(conn, principal.id)


def listed_condition(principal: Principal, groups: Groups) -> ColumnElement[bool] | None:
    """A SQL condition true for tasks whose approvers may name ``principal`` (their email,
    one of their roles or pools), for lists of tasks (the dashboard's queue).

    It looks for each name as a JSON string in the stored policy, so it may also match a
    task that names it in another place (a pool of the same name as one of their roles):
    a list shows such a task, and the task page, which applies :func:`sees_as_approver`,
    does not open it. None for someone no policy can name.
    """
    if principal.kind != "user":
        return None
    names = sorted(
        {*(groups.roles | groups.pools), *([principal.email.lower()] if principal.email else [])}
    )
    if not names:
        return None
    stored = cast(TaskRow.policy, String)
    # SQLite keeps the JSON as written (non-ASCII escaped, \uXXXX); PostgreSQL's JSONB prints
    # it back as UTF-8: look for both spellings of a non-ASCII name.
    spellings = sorted({json.dumps(n, ensure_ascii=a) for n in names for a in (True, False)})
    return or_(*(stored.contains(text, autoescape=True) for text in spellings))
