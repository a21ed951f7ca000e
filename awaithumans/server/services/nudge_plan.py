"""A task's nudge plan: its reminders and escalation as ordered steps, and when each is due.

Pure (no database, no clock): :mod:`.nudges` takes the steps, ``task_create`` sets the first
due time, ``events`` asks whether a task was escalated (its ending closes those messages too).
See :mod:`.nudges` for what a plan is and how steps are taken and caught up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from awaithumans.server.db.records import TaskRecord
from awaithumans.server.services.business_hours import BusinessHours, business_hours_of
from awaithumans.server.services.nudge_notice import ESCALATION, REMINDER, NudgeKind
from awaithumans.server.services.policy import TaskPolicy, from_stored, policy_of


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a plan; ``number`` is its place (1 for the first), what ``nudges_done``
    is once it is taken."""

    number: int
    kind: NudgeKind
    offset_seconds: int


def plan_of(policy: TaskPolicy) -> tuple[Step, ...]:
    """The task's steps in the order they fall due (empty for a task without nudges)."""
    items: list[tuple[int, int, NudgeKind]] = [(s, 0, REMINDER) for s in policy.reminder_seconds]
    if policy.escalate_after_seconds is not None:
        items.append((policy.escalate_after_seconds, 1, ESCALATION))
    items.sort()
    return tuple(Step(i + 1, kind, offset) for i, (offset, _, kind) in enumerate(items))


def due_at(created_at: datetime, offset_seconds: int, hours: BusinessHours | None) -> datetime:
    """When a step ``offset_seconds`` after creation falls due."""
    if hours is None:
        return created_at + timedelta(seconds=offset_seconds)
    return hours.add(created_at, offset_seconds)


def first_nudge_at(
    stored_policy: dict[str, Any] | None, created_at: datetime, business_hours: str | None
) -> datetime | None:
    """``tasks.next_nudge_at`` for a new task: its first step's due time, or None."""
    if stored_policy is None:
        return None
    plan = plan_of(from_stored(stored_policy))
    if not plan:
        return None
    return due_at(created_at, plan[0].offset_seconds, business_hours_of(business_hours))


@dataclass(frozen=True, slots=True)
class Taking:
    """A step this pass takes: the reminders passed over before it, and when the step after
    it falls due (None: the plan is done)."""

    step: Step
    skipped: int
    next_at: datetime | None


def steps_due(
    task: TaskRecord, plan: tuple[Step, ...], now: datetime, hours: BusinessHours | None
) -> list[Taking]:
    """The steps to take now, in order (see the module's "Catching up").

    The next step is due when ``next_nudge_at`` has passed (the stored time decides, so a
    moved clock or a changed setting never makes a step due twice); the steps after it are
    due when their own time, computed from ``created_at``, has passed too.
    """
    done = task.nudges_done
    if task.next_nudge_at is None or task.next_nudge_at > now or done >= len(plan):
        return []
    due = [plan[done]]
    for step in plan[done + 1 :]:
        if due_at(task.created_at, step.offset_seconds, hours) > now:
            break
        due.append(step)
    takings = []
    skipped = 0
    for i, step in enumerate(due):
        if step.kind == REMINDER and any(later.kind == REMINDER for later in due[i + 1 :]):
            skipped += 1
            continue
        following = plan[step.number] if step.number < len(plan) else None
        next_at = None
        if following is not None:
            next_at = due_at(task.created_at, following.offset_seconds, hours)
        takings.append(Taking(step, skipped, next_at))
        skipped = 0
    return takings


def escalated_routes(task: TaskRecord) -> list[str]:
    """The ``escalate_to`` routes of a task whose escalation was taken (else none): they
    were asked too, so the task's ending owes them its close-out."""
    policy = policy_of(task)
    plan = plan_of(policy)
    step = next((s for s in plan if s.kind == ESCALATION), None)
    if step is None or task.nudges_done < step.number:
        return []
    return list(policy.escalate_to)
