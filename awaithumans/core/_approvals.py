"""``approvals_required=``: each approver's vote behind a decision, and how to read them.

A task that needs several approvals completes with the deciding vote's answer;
:func:`approvals_of` gives every vote that led there (who, through which channel, when,
approved or not, and their own answer), oldest first. Like ``is_default``, the votes are
recorded against the returned object itself, so the returned type stays exactly
``response_schema``: a copy (``model_copy``, a round trip through JSON or a workflow's
history) has none.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from awaithumans.core._wire import ApprovalView

R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Approval:
    """One person's vote on a task that needed several approvals.

    Attributes:
        user_id: The voter's directory id (``"admin"`` for the server's admin token).
        email: Their email, when the directory has one.
        display_name: Their name as the directory shows it.
        channel: Where they voted: ``dashboard``, ``slack``, ``email`` or ``api``.
        at: When the vote was recorded (UTC).
        approved: True for an approval, False for a rejection.
        response: Their whole answer, as the response schema's JSON.
    """

    user_id: str
    email: str | None
    display_name: str | None
    channel: str
    at: datetime
    approved: bool
    response: dict[str, Any] | None


# The answers returned with votes, by id: a weak reference each and the votes, so marking
# keeps nothing alive (an entry leaves with its object, before its id can be reused).
_marked: dict[int, tuple[weakref.ref[BaseModel], tuple[Approval, ...]]] = {}
# A model declared with __slots__ takes no weak references; those few are held instead.
_pinned: dict[int, tuple[BaseModel, tuple[Approval, ...]]] = {}


def approvals_of(answer: object) -> list[Approval]:
    """The votes behind ``answer`` (a call's return value), oldest first.

    Empty for a task that needed one answer, and for anything the call did not return
    itself.
    """
    key = id(answer)
    marked = _marked.get(key)
    if marked is not None and marked[0]() is answer:
        return list(marked[1])
    pinned = _pinned.get(key)
    if pinned is not None and pinned[0] is answer:
        return list(pinned[1])
    return []


def mark_approvals(answer: R, votes: Sequence[ApprovalView]) -> R:
    """Record ``votes`` as the ones behind ``answer`` (see :func:`approvals_of`)."""
    if not votes:
        return answer
    approvals = tuple(
        Approval(
            user_id=v.user_id,
            email=v.email,
            display_name=v.display_name,
            channel=v.channel,
            at=v.at,
            approved=v.approved,
            response=v.response,
        )
        for v in votes
    )
    key = id(answer)
    try:
        _marked[key] = (weakref.ref(answer, lambda _gone: _marked.pop(key, None)), approvals)
    except TypeError:
        _pinned[key] = (answer, approvals)
    return answer
