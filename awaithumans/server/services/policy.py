"""A task's approval policy: who may answer, how many must approve, when to nudge whom.

The agent chooses it at create (``approvers=``, ``approvals_required=``, ``reminders=``,
``escalate_after=`` ... in the SDK); :func:`policy_from_request` checks it and turns it into
the JSON stored in ``tasks.policy`` (None for a task that uses none of it, which is most
tasks, so they cost nothing). Everything that enforces a policy reads it back through
:func:`policy_of`, one typed object, rather than poking at the stored dict.

The checks here need no database: an approver that names a role nobody holds yet is a
valid policy (people join roles later); a policy that can never be satisfied as written
(three approvals required of two named people, a majority rule without several approvals)
is refused at create, while the agent is still there to hear it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from awaithumans.core._codes import ErrorCode
from awaithumans.core._routes import InvalidNotifyRouteError, parse_routes
from awaithumans.core._wire import CreateTaskRequest
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.errors import ApiError

#: A role or pool name: what ``role:NAME`` / ``pool:NAME`` and the directory accept.
GROUP_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")

#: What a refused M-of-N with too few voters tells the agent to do instead.
_NAME_VOTERS = (
    "name enough approvers, or (with no approvers) several assignees: "
    "assign_to emails, a role or a pool."
)

#: The response field M-of-N counts by: True approves, False rejects.
APPROVED_FIELD = "approved"


@dataclass(frozen=True, slots=True)
class Approvers:
    """``approvers=`` parsed: people by email (lowercased), and role and pool names."""

    emails: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    pools: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.emails or self.roles or self.pools)


@dataclass(frozen=True, slots=True)
class TaskPolicy:
    """The policy of one task; the defaults are a plain task's."""

    approvers: Approvers = Approvers()
    operators_may_answer: bool = True
    approvals_required: int = 1
    rejection_policy: Literal["any_rejects", "majority"] = "any_rejects"
    reminder_seconds: tuple[int, ...] = ()
    escalate_after_seconds: int | None = None
    escalate_to: tuple[str, ...] = ()
    escalate_reassign: bool = False

    @property
    def restricts_answerers(self) -> bool:
        """Whether only named approvers (and maybe operators) may answer."""
        return bool(self.approvers)

    @property
    def counts_votes(self) -> bool:
        """Whether answers are votes that count towards ``approvals_required``."""
        return self.approvals_required > 1

    @property
    def has_nudges(self) -> bool:
        """Whether the scheduler has reminders or an escalation to send."""
        return bool(self.reminder_seconds) or self.escalate_after_seconds is not None


PLAIN = TaskPolicy()


def policy_of(task: TaskRecord) -> TaskPolicy:
    """The task's policy (the plain one when it has none)."""
    return PLAIN if task.policy is None else from_stored(task.policy)


def from_stored(stored: dict[str, Any]) -> TaskPolicy:
    approvers = stored.get("approvers") or {}
    escalate_after = stored.get("escalate_after_seconds")
    return TaskPolicy(
        approvers=Approvers(
            emails=frozenset(approvers.get("emails", ())),
            roles=frozenset(approvers.get("roles", ())),
            pools=frozenset(approvers.get("pools", ())),
        ),
        operators_may_answer=bool(stored.get("operators_may_answer", True)),
        approvals_required=int(stored.get("approvals_required", 1)),
        rejection_policy="majority"
        if stored.get("rejection_policy") == "majority"
        else "any_rejects",
        reminder_seconds=tuple(int(s) for s in stored.get("reminder_seconds", ())),
        # Read back as strictly as the other numbers: a float or a string another writer
        # stored must not reach the scheduler's arithmetic and sorting as one.
        escalate_after_seconds=None if escalate_after is None else int(escalate_after),
        escalate_to=tuple(stored.get("escalate_to", ())),
        escalate_reassign=bool(stored.get("escalate_reassign", False)),
    )


def policy_from_request(req: CreateTaskRequest) -> dict[str, Any] | None:
    """The policy to store for a create, or None when the request sets none.

    Raises:
        ApiError: 400 ``INVALID_POLICY`` (or ``INVALID_NOTIFY_ROUTE`` for an escalation
            route) saying what is wrong; nothing is stored.
    """
    approvers = _parse_approvers(req.approvers or [])
    if req.approvals_required > 1 and not approvers:
        # "Two of the assignees, or of a pool": with no approvers named, the people assign_to
        # names are the voters (and the only ones, besides operators).
        approvers = _assignees_as_approvers(req.assign_to)
    escalate_to = _parse_escalation_routes(req.escalate_to or [])
    if req.escalate_after_seconds is not None and not escalate_to:
        _refuse("escalate_after needs escalate_to: the routes to notify on escalation.")
    if escalate_to and req.escalate_after_seconds is None:
        _refuse("escalate_to needs escalate_after: when to escalate.")
    if req.escalate_reassign and not escalate_to:
        _refuse("escalate_reassign needs escalate_to: whom to reassign to.")
    if req.approvals_required > 1:
        _check_votable(req)
        named = len(approvers.emails)
        if not approvers and _assigns_a_user_id(req.assign_to):
            # One person by id is as far from N approvals as one by email: the same refusal
            # (left to the plain rule, the assignee and any operator would be the voters).
            named = 1
        if named and not (approvers.roles or approvers.pools) and named < req.approvals_required:
            _refuse(
                f"approvals_required is {req.approvals_required} but approvers (or assign_to, "
                f"when no approvers are named) name only {named} "
                f"{'person' if named == 1 else 'people'}: {_NAME_VOTERS}"
            )
    elif req.rejection_policy != "any_rejects":
        _refuse("rejection_policy applies only when approvals_required is more than 1.")
    if not req.operators_may_answer and not approvers:
        _refuse("operators_may_answer=False needs approvers: who may answer instead.")
    stored: dict[str, Any] = {}
    if approvers:
        stored["approvers"] = {
            "emails": sorted(approvers.emails),
            "roles": sorted(approvers.roles),
            "pools": sorted(approvers.pools),
        }
        stored["operators_may_answer"] = req.operators_may_answer
    if req.approvals_required > 1:
        stored["approvals_required"] = req.approvals_required
        stored["rejection_policy"] = req.rejection_policy
    if req.reminder_seconds:
        stored["reminder_seconds"] = sorted(set(req.reminder_seconds))
    if escalate_to:
        stored["escalate_after_seconds"] = req.escalate_after_seconds
        stored["escalate_to"] = escalate_to
        stored["escalate_reassign"] = req.escalate_reassign
    return stored or None


def _parse_approvers(raw: list[str]) -> Approvers:
    emails: set[str] = set()
    roles: set[str] = set()
    pools: set[str] = set()
    for entry in raw:
        value = entry.strip()
        kind, colon, name = value.partition(":")
        if colon and kind in ("role", "pool"):
            if not GROUP_NAME.fullmatch(name):
                _refuse(
                    f"approvers: {entry!r} is not a valid {kind} name (lowercase letters, "
                    "digits, '.', '_', '-'; up to 64 characters)."
                )
            (roles if kind == "role" else pools).add(name)
        elif _EMAIL.fullmatch(value):
            emails.add(value.lower())
        else:
            _refuse(f"approvers: {entry!r} is neither an email nor 'role:NAME' / 'pool:NAME'.")
    return Approvers(frozenset(emails), frozenset(roles), frozenset(pools))


def _assignees_as_approvers(assign_to: dict[str, Any] | None) -> Approvers:
    """The voters an ``assign_to`` names: its emails, its role or its pool (a user id alone
    names nobody here: the caller refuses it, as it refuses one email)."""
    if not assign_to:
        return Approvers()
    emails = assign_to.get("emails") or [assign_to.get("email")]
    found = {e.strip().lower() for e in emails if isinstance(e, str) and e.strip()}
    role, pool = assign_to.get("role"), assign_to.get("pool")
    return Approvers(
        emails=frozenset(found),
        roles=frozenset({role} if isinstance(role, str) else ()),
        pools=frozenset({pool} if isinstance(pool, str) else ()),
    )


def _assigns_a_user_id(assign_to: dict[str, Any] | None) -> bool:
    """Whether ``assign_to`` is ``{"user_id": ...}`` (one person, named by id)."""
    return assign_to is not None and isinstance(assign_to.get("user_id"), str)


def _parse_escalation_routes(raw: list[str]) -> list[str]:
    try:
        return [str(r) for r in parse_routes(raw)]
    except InvalidNotifyRouteError as exc:
        raise ApiError(400, ErrorCode.INVALID_NOTIFY_ROUTE, f"escalate_to: {exc}") from None


def _check_votable(req: CreateTaskRequest) -> None:
    """Several approvals are counted by the response's boolean ``approved`` field."""
    field = (req.response_schema.get("properties") or {}).get(APPROVED_FIELD)
    if not isinstance(field, dict) or field.get("type") != "boolean":
        _refuse(
            f"approvals_required > 1 counts approvals by the response's boolean "
            f"{APPROVED_FIELD!r} field; this response_schema has none."
        )
    if req.verifier_config is not None:
        _refuse("approvals_required > 1 cannot be combined with a verifier.")


def _refuse(message: str) -> NoReturn:
    raise ApiError(400, ErrorCode.INVALID_POLICY, message)
