"""Reminders and escalation: a task's nudge plan, and taking each step of it once.

A task's **plan** comes from its policy (``policy_of(task)``): each reminder offset, then the
escalation, ordered by due time (a reminder at the escalation's offset goes first). Offsets
count from the task's creation; with ``AWAITHUMANS_BUSINESS_HOURS`` only business time counts
(``services/business_hours.py``). ``tasks.nudges_done`` counts the steps taken and
``tasks.next_nudge_at`` is when the next one is due (None when the plan is done, or the task
has none): the create sets the first (:func:`first_nudge_at`), each step the following.

The timeout scheduler's loop (``services/scheduler.py``) calls :func:`take_due` on every
pass, so nudges share its wake-ups, its restarts and its max sleep. A step is one
``lifecycle.annotate``: its check is "``nudges_done`` is still what this pass read", and it
sets ``nudges_done`` past the step, so two replicas (or two passes) that read the same row
cannot both take it; the loser is refused and sends nothing. The step's audit row (action
``reminder`` or ``escalation``, channel ``scheduler``) and its outbox rows land in the same
transaction: a reminder asks the task's own ``notify`` routes again; an escalation asks
``escalate_to``, and with ``escalate_reassign`` the task goes to the first person those routes
name who is in the directory (an email route's address, a Slack member id or Slack email
linked to a directory user; a ``slack:@handle`` or a channel names nobody the server can
tell without asking Slack, and is passed over), or to their delegate when they are away
(the delegation is in the audit row's detail). The task keeps its status either way.

**Catching up.** Steps whose time passed while no server ran are taken on the first pass
after, not replayed one by one: of the reminders due, only the latest is sent (a person who
slept through three reminders gets one), the escalation is always taken (it tells someone
new, and may reassign); each step taken is its own audit row, in plan order, and the
reminders passed over are counted in the detail (``skipped``).

A task waiting for its verifier (``submitted``) is nobody's to answer: its nudges wait, and
are caught up if the verifier rejects the answer. A closed task has none.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._routes import InvalidNotifyRouteError, parse_route
from awaithumans.core._wire import ApprovalView
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import OPEN_TASK_CONDITION, TaskRow, UserRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import Principal
from awaithumans.server.services.business_hours import business_hours_of
from awaithumans.server.services.delegation import follow_delegations
from awaithumans.server.services.events import nudge_rows
from awaithumans.server.services.lifecycle import ANSWERABLE, Channel, Moved, Refused, annotate
from awaithumans.server.services.nudge_notice import ESCALATION, REMINDER, duration_words
from awaithumans.server.services.nudge_plan import Step, Taking, plan_of, steps_due
from awaithumans.server.services.policy import TaskPolicy, policy_of
from awaithumans.server.services.views import snapshot_of
from awaithumans.server.services.votes import votes_of
from awaithumans.server.services.writer import Write

log = logging.getLogger("awaithumans.server.nudges")

#: Who the audit trail says took a step.
NUDGER = Principal(kind="system", id="scheduler", label="reminder scheduler")

#: The check's refusal when another pass or replica took the step first.
STEP_TAKEN = "NUDGE_STEP_TAKEN"

_BATCH = 200


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    label: str


async def first_person(conn: AsyncConnection, routes: tuple[str, ...]) -> Person | None:
    """The first active directory user ``routes`` name, in their order (see the module)."""
    for raw in routes:
        try:
            route = parse_route(raw)
        except InvalidNotifyRouteError:
            continue
        if route.target_kind == "email":
            match = func.lower(UserRow.email) == route.target.lower()
        elif route.channel == "slack" and route.target_kind == "user_id":
            match = UserRow.slack_user_id == route.target
        else:
            continue
        row = (
            await conn.execute(
                select(UserRow.id, UserRow.display_name, UserRow.email)
                .where(match, UserRow.is_active.is_(True))
                .limit(1)
            )
        ).first()
        if row is not None:
            # Labelled as delegations are (email, else name): one way in the audit trail.
            return Person(row.id, row.email or row.display_name or row.id)
    return None


class TakeNudges(Write[list[Moved | Refused]]):
    """Take the due steps of one task: one annotate (audit row, outbox rows) per step."""

    def __init__(self, ctx: ServerContext, task_id: str) -> None:
        self.ctx = ctx
        self.task_id = task_id
        self.approvals: list[ApprovalView] = []

    async def apply(self, conn: AsyncConnection) -> list[Moved | Refused]:
        found = (
            (await conn.execute(select(TaskRow).where(TaskRow.id == self.task_id)))
            .mappings()
            .one_or_none()
        )
        if found is None:
            return []
        task = TaskRecord.from_row(found)
        if task.status not in ANSWERABLE or task.next_nudge_at is None:
            return []
        policy = policy_of(task)
        plan = plan_of(policy)
        if task.nudges_done >= len(plan):
            # Nothing left to take (a plan cut short by hand): stop being due.
            done = await annotate(
                conn,
                task.id,
                status=ANSWERABLE,
                action="nudge_plan_done",
                actor=NUDGER,
                channel=Channel.SCHEDULER,
                values={"next_nudge_at": None},
                audited=False,
            )
            return [done]
        if policy.counts_votes:
            # The hub's snapshot of a task that counts votes carries them; keep them there.
            self.approvals = await votes_of(conn, self.ctx.sealer, task.id)
        hours = business_hours_of(self.ctx.settings.business_hours)
        outcomes: list[Moved | Refused] = []
        expected = task.nudges_done
        for taking in steps_due(task, plan, utcnow(), hours):
            outcome = await self._take(conn, task, policy, taking, expected, hours is not None)
            outcomes.append(outcome)
            if not isinstance(outcome, Moved):
                break
            expected = taking.step.number
        return outcomes

    async def _take(
        self,
        conn: AsyncConnection,
        task: TaskRecord,
        policy: TaskPolicy,
        taking: Taking,
        expected: int,
        business_hours: bool,
    ) -> Moved | Refused:
        step = taking.step
        routes = list(task.notify or ()) if step.kind == REMINDER else list(policy.escalate_to)
        values: dict[str, Any] = {"next_nudge_at": taking.next_at}
        detail: dict[str, Any] = {"step": step.number, "routes": routes, "reassigned_to": None}
        if taking.skipped:
            detail["skipped"] = taking.skipped
        person = None
        if step.kind == ESCALATION and policy.escalate_reassign:
            person = await first_person(conn, policy.escalate_to)
            if person is not None:
                # Someone away hands it on, as a new task meant for them would be.
                found = await follow_delegations(conn, [person.id], utcnow())
                delegated = found.get(person.id)
                if delegated is not None:
                    hops = delegated.hops
                    detail["delegated"] = [hop.detail() for hop in hops]
                    person = Person(delegated.delegate, hops[-1].target_label)
                values["assigned_to_user_id"] = person.id
                detail["reassigned_to"] = person.id
        # The dashboard's audit list shows a detail's message as the row's note.
        detail["message"] = _note(step, routes, person, business_hours)

        def check(current: TaskRecord) -> str | None:
            return None if current.nudges_done == expected else STEP_TAKEN

        def derive(current: TaskRecord) -> dict[str, Any]:
            return {"nudges_done": step.number}

        def events(current: TaskRecord) -> list[dict[str, Any]]:
            return nudge_rows(
                current.id,
                routes,
                step.kind,
                step=step.number,
                after_seconds=step.offset_seconds,
                business_hours=business_hours,
            )

        return await annotate(
            conn,
            task.id,
            status=ANSWERABLE,
            action=step.kind,
            actor=NUDGER,
            channel=Channel.SCHEDULER,
            values=values,
            detail=detail,
            check=check,
            derive=derive,
            events=events,
        )

    def after(self, result: list[Moved | Refused]) -> None:
        moved = [r for r in result if isinstance(r, Moved)]
        if moved:
            self.ctx.hub.publish(snapshot_of(moved[-1].task, None, approvals=self.approvals))
        if any(m.outbox_rows for m in moved):
            self.ctx.wake.outbox()


def _note(step: Step, routes: list[str], person: Person | None, business_hours: bool) -> str:
    where = ", ".join(routes) if routes else "no notify routes"
    after = duration_words(step.offset_seconds) + (" of business hours" if business_hours else "")
    if step.kind == REMINDER:
        return f"Reminder {step.number} after {after}: {where}"
    note = f"Nobody answered in {after}: escalated to {where}"
    return note + (f"; reassigned to {person.label}" if person is not None else "")


async def take_due(ctx: ServerContext) -> datetime | None:
    """Take every due step of every open task; return when the next one falls due."""
    nudgeable = [s.value for s in ANSWERABLE]
    while True:
        now = utcnow()
        async with ctx.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(TaskRow.id, TaskRow.next_nudge_at)
                    .where(
                        TaskRow.next_nudge_at.is_not(None),
                        text(OPEN_TASK_CONDITION),
                        TaskRow.status.in_(nudgeable),
                    )
                    .order_by(TaskRow.next_nudge_at)
                    .limit(_BATCH)
                )
            ).all()
        due = [r.id for r in rows if r.next_nudge_at <= now]
        if not due:
            first: datetime | None = rows[0].next_nudge_at if rows else None
            return first
        results = await asyncio.gather(*(ctx.writer.submit(TakeNudges(ctx, i)) for i in due))
        taken = sum(1 for r in results for o in r if isinstance(o, Moved))
        if taken:
            log.info("took %d reminder/escalation step(s) on %d task(s)", taken, len(due))
        else:
            # Taken by another replica meanwhile; look again shortly rather than spin.
            return now + timedelta(seconds=1)
