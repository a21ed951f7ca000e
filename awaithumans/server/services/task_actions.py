"""What humans, agents and the scheduler do to existing tasks, as writer jobs.

Each action is a thin wrapper around :func:`lifecycle.transition`: the lifecycle decides
whether the move is legal and records it; the action supplies the values and the
precondition, and after the commit publishes the new state to waiting polls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import Principal
from awaithumans.server.services import candidates
from awaithumans.server.services.approvers import NO_GROUPS, answer_refusal
from awaithumans.server.services.decision_receipts import completion_values
from awaithumans.server.services.lifecycle import (
    ANSWERABLE,
    Channel,
    Check,
    Derive,
    Move,
    Moved,
    Refused,
    transition_many,
)
from awaithumans.server.services.memberships import Groups
from awaithumans.server.services.policy import policy_of
from awaithumans.server.services.views import open_for, seal_for, snapshot_of
from awaithumans.server.services.writer import Write

S = TaskStatus


def may_answer(principal: Principal, task: TaskRecord, groups: Groups = NO_GROUPS) -> bool:
    """Operators answer anything, a reviewer what is assigned to them; a task with
    approvers only its approvers (and operators, unless its policy says otherwise).

    ``groups`` are the person's roles and pools (``services.approvers.groups_for``): without
    them a role or pool listed among the approvers does not count (fail closed)."""
    return answer_refusal(principal, task, groups) is None


class TaskAction(Write[Moved | Refused]):
    """Base for single-task transitions; publishes the outcome to the hub after commit."""

    group: ClassVar[str | None] = "transition"

    to: TaskStatus
    action: str
    allowed_from: frozenset[TaskStatus] | None = None
    #: The actor's roles and pools, read before the job was queued, for the approvers
    #: rule in ``check`` (``answers`` sets them on the jobs that answer or claim).
    groups: Groups = NO_GROUPS

    def __init__(
        self, ctx: ServerContext, task_id: str, actor: Principal, channel: Channel
    ) -> None:
        self.ctx = ctx
        self.task_id = task_id
        self.actor = actor
        self.channel = channel

    def values(self) -> dict[str, Any]:
        return {}

    def check(self, task: TaskRecord) -> str | None:
        return None

    def detail(self) -> dict[str, Any] | None:
        return None

    def answer_refusal(self, task: TaskRecord) -> str | None:
        """Why the actor may not answer ``task`` as it is now (approvers, assignment)."""
        return answer_refusal(self.actor, task, self.groups)

    def response(self) -> dict[str, Any] | None:
        return None

    def derive(self, task: TaskRecord) -> dict[str, Any]:
        """Values that depend on the task as it is when the move is decided."""
        return {}

    def taking_derive(self, task: TaskRecord) -> dict[str, Any]:
        # A candidate claiming or answering an offered task takes it in the same write.
        return {**candidates.taking(self.actor, task, self.to), **self.derive(task)}

    def move(self) -> Move:
        check: Check = self.check
        derive: Derive = self.taking_derive
        return Move(
            self.task_id,
            self.to,
            self.action,
            self.actor,
            self.channel,
            allowed_from=self.allowed_from,
            values=self.values(),
            detail=self.detail(),
            check=check,
            derive=derive,
        )

    async def apply(self, conn: AsyncConnection) -> Moved | Refused:
        (outcome,) = await self.apply_many(conn, [self])
        return outcome

    @classmethod
    async def apply_many(
        cls, conn: AsyncConnection, writes: Sequence[Write[Any]]
    ) -> list[Moved | Refused]:
        # Every action in a batch, of whatever kind, in one pass through the lifecycle.
        actions = [w for w in writes if isinstance(w, TaskAction)]
        assert len(actions) == len(writes), "only task actions share the transition group"
        engines = actions[0].ctx.settings.direct_engines
        return await transition_many(conn, [a.move() for a in actions], engines=engines)

    def after(self, result: Moved | Refused) -> None:
        if not isinstance(result, Moved):
            return
        if policy_of(result.task).counts_votes:
            # Its snapshot carries its votes, which this move did not read: polls read the
            # task again (votes.CastVote publishes the snapshots of votes themselves).
            self.ctx.hub.forget(self.task_id)
            if result.outbox_rows:
                self.ctx.wake.outbox()
            return
        response = self.response()
        if response is None:
            response = open_for(self.ctx.sealer, self.task_id, result.task.response_enc)
        self.ctx.hub.publish(snapshot_of(result.task, response))
        if result.outbox_rows:
            self.ctx.wake.outbox()


class Complete(TaskAction):
    """A human's validated answer lands (no verifier configured)."""

    to = S.COMPLETED
    action = "completed"
    allowed_from = ANSWERABLE

    def __init__(
        self,
        ctx: ServerContext,
        task_id: str,
        actor: Principal,
        channel: Channel,
        answer: dict[str, Any],
    ) -> None:
        super().__init__(ctx, task_id, actor, channel)
        self.answer = answer

    def check(self, task: TaskRecord) -> str | None:
        return self.answer_refusal(task)

    def values(self) -> dict[str, Any]:
        return {
            "response_enc": seal_for(self.ctx.sealer, self.task_id, self.answer),
            "completed_at": utcnow(),
            "completed_by_user_id": self.actor.id,
            "completed_by_email": self.actor.email,
            "completed_by_display_name": self.actor.display_name or self.actor.label,
            "completed_via_channel": self.channel.value,
        }

    def detail(self) -> dict[str, Any] | None:
        return {"fields": sorted(self.answer)}

    def response(self) -> dict[str, Any] | None:
        return self.answer

    def derive(self, task: TaskRecord) -> dict[str, Any]:
        # The signed receipt, over the task as read in the completing transaction.
        by = {
            "id": self.actor.id,
            "email": self.actor.email,
            "label": self.actor.display_name or self.actor.label,
        }
        return completion_values(
            self.ctx, task, response=self.answer, answered_by=by, channel=self.channel.value
        )


class Claim(TaskAction):
    """A human takes a task; the first claim wins."""

    to = S.IN_PROGRESS
    action = "claimed"
    allowed_from = frozenset({S.CREATED, S.NOTIFIED, S.ASSIGNED})

    def check(self, task: TaskRecord) -> str | None:
        if policy_of(task).restricts_answerers and (refusal := self.answer_refusal(task)):
            return refusal
        assignee = task.assigned_to_user_id
        if assignee is not None and assignee != self.actor.id and not self.actor.is_operator:
            return "NOT_ASSIGNED_TO_YOU"
        return None

    def values(self) -> dict[str, Any]:
        return {"assigned_to_user_id": self.actor.id} if self.actor.kind == "user" else {}


class Cancel(TaskAction):
    to = S.CANCELLED
    action = "cancelled"

    def __init__(
        self,
        ctx: ServerContext,
        task_id: str,
        actor: Principal,
        channel: Channel,
        reason: str | None = None,
    ) -> None:
        super().__init__(ctx, task_id, actor, channel)
        self.reason = reason

    def check(self, task: TaskRecord) -> str | None:
        if self.actor.is_operator or task.owner_id == self.actor.owner_id:
            return None
        return "FORBIDDEN"

    def detail(self) -> dict[str, Any] | None:
        return {"reason": self.reason} if self.reason else None


class TimeOut(TaskAction):
    """The scheduler closes a task whose deadline passed.

    A task created with an ``on_timeout`` default gets it as its response; the scheduler,
    which reads whether the task has one, says so with ``default_applied`` for the audit.
    """

    to = S.TIMED_OUT
    action = "timed_out"

    def __init__(
        self,
        ctx: ServerContext,
        task_id: str,
        actor: Principal,
        channel: Channel,
        *,
        default_applied: bool = False,
    ) -> None:
        super().__init__(ctx, task_id, actor, channel)
        self.default_applied = default_applied

    def check(self, task: TaskRecord) -> str | None:
        return None if task.timeout_at <= utcnow() else "NOT_DUE"

    def values(self) -> dict[str, Any]:
        return {"timed_out_at": utcnow()}

    def detail(self) -> dict[str, Any] | None:
        return {"default_applied": True} if self.default_applied else None

    def derive(self, task: TaskRecord) -> dict[str, Any]:
        # Sealed under the same task binding as a response: the blob moves as it is.
        if task.on_timeout_enc is None:
            return {}
        return {"response_enc": task.on_timeout_enc}


class MarkNotified(TaskAction):
    """A notification reached a human channel."""

    to = S.NOTIFIED
    action = "notified"
    allowed_from = frozenset({S.CREATED})

    def __init__(
        self, ctx: ServerContext, task_id: str, actor: Principal, channel: Channel, route: str
    ) -> None:
        super().__init__(ctx, task_id, actor, channel)
        self.route = route

    def detail(self) -> dict[str, Any] | None:
        return {"route": self.route}


class AssignRecipient(TaskAction):
    """A notification went to one person (a Slack DM): they become the assignee, if the
    task had none, so they may answer it where it reached them."""

    to = S.ASSIGNED
    action = "assigned"
    allowed_from = frozenset({S.CREATED, S.NOTIFIED})

    def __init__(
        self,
        ctx: ServerContext,
        task_id: str,
        actor: Principal,
        channel: Channel,
        user_id: str,
        route: str,
    ) -> None:
        super().__init__(ctx, task_id, actor, channel)
        self.user_id = user_id
        self.route = route

    def check(self, task: TaskRecord) -> str | None:
        if candidates.candidates_of(task):
            return "OFFERED"  # offered to several people: whoever claims it takes it
        return None if task.assigned_to_user_id is None else "ALREADY_ASSIGNED"

    def values(self) -> dict[str, Any]:
        return {"assigned_to_user_id": self.user_id}

    def detail(self) -> dict[str, Any] | None:
        return {"route": self.route, "implicit": True}
