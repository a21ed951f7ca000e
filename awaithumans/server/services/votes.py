"""M-of-N: a task that needs several approvals counts each answer as one person's vote.

A task whose policy has ``approvals_required = N > 1`` takes answers as votes, counted by
the response's boolean ``approved`` field. A vote is refused when its person (a directory
user's id; the admin token is one person, ``"admin"``) is the task's requester (whoever
created it, or for an agent key whoever created the key), has voted already (the unique
``task_votes`` row is the backstop across replicas), or is not an approver.

A vote that does not decide is a ``task_votes`` row (its answer sealed like a response)
and one audit row through :func:`lifecycle.annotate` (status unchanged, version moved so
live pages and polls see it). The deciding vote (approvals reach N; or the first
rejection under ``any_rejects``, rejections reaching N under ``majority``; or, for
approvers named only by email with operators excluded, a rejection that leaves too few
people to reach N) completes the
task through the usual :class:`~services.task_actions.Complete` move with that vote's
answer, in the same transaction as its vote row. On PostgreSQL the task row is locked
while the votes are counted, so of two N-th approvals from two replicas one completes and
the other finds the task completed; on SQLite the write checks that the task's version is
still the one the count was made at (every vote moves it), and counts again if not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._wire import ApprovalView, TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import AgentKeyRow, TaskRow, TaskVoteRow, UserRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import Principal
from awaithumans.server.security import Sealer
from awaithumans.server.services.events import NOTIFY, outbox_values
from awaithumans.server.services.lifecycle import (
    ANSWERABLE,
    Channel,
    Check,
    Moved,
    Refused,
    annotate,
    transition_many,
)
from awaithumans.server.services.memberships import Groups
from awaithumans.server.services.policy import APPROVED_FIELD, TaskPolicy, policy_of
from awaithumans.server.services.task_actions import Complete
from awaithumans.server.services.views import snapshot_of
from awaithumans.server.services.writer import Write

#: Refusal reasons a vote adds to the answer path's (``services.answers`` maps them).
ALREADY_VOTED = "ALREADY_VOTED"
REQUESTER_CANNOT_APPROVE = "REQUESTER_CANNOT_APPROVE"
_RECOUNT = "RECOUNT"

#: The event of a vote that did not decide: Slack rewrites the task's messages with the
#: progress ("1 of 2 approvals"); other channels have nothing to say until the end.
VOTED_EVENT = "task.voted"
_PROGRESS_CHANNELS = ("slack:", "slack+")

Verdict = Literal["approved", "rejected"]


def vote_aad(vote_id: str) -> bytes:
    # A vote's answer is bound to its row, as a task's response is bound to its task.
    return f"task_vote:{vote_id}".encode()


def person_of(principal: Principal) -> str:
    """Who a vote counts as: a directory user's id; ``"admin"`` for the admin token."""
    return principal.id


async def requester_of(conn: AsyncConnection, owner_id: str) -> str | None:
    """The person behind a task's creator (``owner_id``): a user's id, ``"admin"``, or for
    an agent key whoever created the key (None when nobody is recorded)."""
    kind, _, ident = owner_id.partition(":")
    if kind == "user":
        return ident
    if kind == "admin":
        return "admin"
    if kind == "agent":
        made_by = (
            await conn.execute(select(AgentKeyRow.created_by).where(AgentKeyRow.id == ident))
        ).scalar_one_or_none()
        if made_by is not None and not made_by.startswith("agent:"):
            return await requester_of(conn, made_by)
    return None


async def vote_refusal(
    conn: AsyncConnection,
    sealer: Sealer,
    who: Principal,
    task: TaskRecord,
    votes: list[ApprovalView] | None = None,
) -> str | None:
    """Why ``who``'s vote on ``task`` would not count (the requester, voted already).

    ``votes``: the task's votes, when the caller has read them already (the write that
    counts them checks against the very list it counts); read here otherwise.
    """
    me = person_of(who)
    if me == await requester_of(conn, task.owner_id):
        return REQUESTER_CANNOT_APPROVE
    if votes is None:
        votes = await votes_of(conn, sealer, task.id)
    if any(v.user_id == me for v in votes):
        return ALREADY_VOTED
    return None


@dataclass(frozen=True, slots=True)
class Tally:
    approvals: int
    rejections: int

    @classmethod
    def of(cls, votes: Iterable[ApprovalView]) -> Tally:
        counted = [v.approved for v in votes]
        return cls(sum(counted), len(counted) - sum(counted))

    def verdict(self, policy: TaskPolicy, still_to_vote: int | None = None) -> Verdict | None:
        """What the votes decide under ``policy``, or None while they decide nothing.

        ``still_to_vote``: how many more people may vote, when that is known (approvers
        named only by email, operators excluded); when too few are left to reach the
        approvals required, the task is rejected now rather than left to time out.
        """
        if self.approvals >= policy.approvals_required:
            return "approved"
        if policy.rejection_policy == "any_rejects" and self.rejections:
            return "rejected"
        if self.rejections >= policy.approvals_required:
            return "rejected"
        if still_to_vote is not None and self.approvals + still_to_vote < policy.approvals_required:
            return "rejected"
        return None


async def still_to_vote(
    conn: AsyncConnection, task: TaskRecord, votes: Iterable[ApprovalView]
) -> int | None:
    """How many listed people may still vote on ``task``, when the policy bounds it: its
    approvers are emails only and operators may not answer (None otherwise)."""
    policy = policy_of(task)
    approvers = policy.approvers
    if policy.operators_may_answer or not approvers.emails or approvers.roles or approvers.pools:
        return None
    left = set(approvers.emails) - {(v.email or "").lower() for v in votes}
    requester = await requester_of(conn, task.owner_id)
    if requester is not None:
        found = (
            await conn.execute(select(UserRow.email).where(UserRow.id == requester))
        ).scalar_one_or_none()
        left.discard((found or "").lower())
    return len(left)


async def votes_by_task(
    conn: AsyncConnection, sealer: Sealer, task_ids: Iterable[str]
) -> dict[str, list[ApprovalView]]:
    """Each task's votes, oldest first, answers opened."""
    ids = sorted(set(task_ids))
    if not ids:
        return {}
    rows = (
        await conn.execute(
            select(TaskVoteRow).where(TaskVoteRow.task_id.in_(ids)).order_by(TaskVoteRow.id)
        )
    ).mappings()
    found: dict[str, list[ApprovalView]] = {i: [] for i in ids}
    for row in rows:
        opened = sealer.open_json(row["response_enc"], aad=vote_aad(str(row["id"])))
        found[row["task_id"]].append(
            ApprovalView(
                user_id=row["user_id"],
                email=row["email"],
                display_name=row["display_name"],
                channel=row["channel"],
                at=row["at"],
                approved=row["approved"],
                response=opened if isinstance(opened, dict) else None,
            )
        )
    return found


async def votes_of(conn: AsyncConnection, sealer: Sealer, task_id: str) -> list[ApprovalView]:
    return (await votes_by_task(conn, sealer, [task_id]))[task_id]


async def approvals_for(ctx: ServerContext, task: TaskRecord) -> list[ApprovalView] | None:
    """The votes of ``task`` when it counts votes (None when it does not)."""
    if not policy_of(task).counts_votes:
        return None
    async with ctx.reader.connect() as conn:
        return await votes_of(conn, ctx.sealer, task.id)


def progress_rows(task: TaskRecord) -> list[dict[str, Any]]:
    """The outbox rows that tell the task's Slack messages about a vote."""
    return [
        outbox_values(task.id, NOTIFY, route, {"event": VOTED_EVENT})
        for route in task.notify or ()
        if route.startswith(_PROGRESS_CHANNELS)
    ]


class DecidingVote(Complete):
    """The vote that decides completes the task with its answer; the audit row says so."""

    def __init__(
        self,
        ctx: ServerContext,
        task_id: str,
        actor: Principal,
        channel: Channel,
        answer: dict[str, Any],
        tally: Tally,
        required: int,
    ) -> None:
        super().__init__(ctx, task_id, actor, channel, answer)
        self.tally = tally
        self.required = required

    def detail(self) -> dict[str, Any] | None:
        return {
            "fields": sorted(self.answer),
            "vote": True,
            "approved": self.answer.get(APPROVED_FIELD) is True,
            "approvals": self.tally.approvals,
            "rejections": self.tally.rejections,
            "required": self.required,
        }


@dataclass(frozen=True, slots=True)
class Voted:
    """A vote that landed: the task as it is now, and every vote on it (this one last)."""

    moved: Moved
    votes: list[ApprovalView]


class CastVote(Write[Voted | Refused]):
    """One person's vote on a task that needs several approvals (a writer job)."""

    def __init__(
        self,
        ctx: ServerContext,
        task_id: str,
        actor: Principal,
        channel: Channel,
        answer: dict[str, Any],
        groups: Groups,
    ) -> None:
        self.ctx = ctx
        self.task_id = task_id
        self.actor = actor
        self.channel = channel
        self.answer = answer
        self.groups = groups
        self.approved = answer.get(APPROVED_FIELD) is True

    async def apply(self, conn: AsyncConnection) -> Voted | Refused:
        while True:
            outcome = await self._once(conn)
            if not (isinstance(outcome, Refused) and outcome.reason == _RECOUNT):
                return outcome

    async def _once(self, conn: AsyncConnection) -> Voted | Refused:
        query = select(TaskRow).where(TaskRow.id == self.task_id)
        if conn.dialect.name == "postgresql":
            # Votes on one task take turns: the count below is the count the write lands on.
            query = query.with_for_update()
        found = (await conn.execute(query)).mappings().one_or_none()
        if found is None:
            return Refused(self.task_id, None)
        task = TaskRecord.from_row(found)
        if task.status not in ANSWERABLE:
            return Refused(self.task_id, task.status, task=task)
        complete = DecidingVote(
            self.ctx, self.task_id, self.actor, self.channel, self.answer, Tally(0, 0), 0
        )
        complete.groups = self.groups
        if (reason := complete.answer_refusal(task)) is not None:
            return Refused(self.task_id, task.status, reason, task=task)
        votes = await votes_of(conn, self.ctx.sealer, self.task_id)
        reason = await vote_refusal(conn, self.ctx.sealer, self.actor, task, votes)
        if reason is not None:
            return Refused(self.task_id, task.status, reason, task=task)
        at = utcnow()
        mine = ApprovalView(
            user_id=person_of(self.actor),
            email=self.actor.email,
            display_name=self.actor.display_name or self.actor.label,
            channel=self.channel.value,
            at=at,
            approved=self.approved,
            response=self.answer,
        )
        votes = [*votes, mine]
        policy = policy_of(task)
        tally = Tally.of(votes)
        verdict = tally.verdict(policy, await still_to_vote(conn, task, votes))
        seen = task.version

        def unchanged(current: TaskRecord) -> str | None:
            # Another process's vote moved the version after our count: count again.
            if current.version != seen:
                return _RECOUNT
            return complete.answer_refusal(current)

        if verdict is not None:
            decide = DecidingVote(
                self.ctx,
                self.task_id,
                self.actor,
                self.channel,
                self.answer,
                tally,
                policy.approvals_required,
            )
            decide.groups = self.groups
            check: Check = unchanged
            move = dataclasses.replace(decide.move(), check=check)
            engines = self.ctx.settings.direct_engines
            (outcome,) = await transition_many(conn, [move], engines=engines)
        else:
            outcome = await annotate(
                conn,
                self.task_id,
                status=ANSWERABLE,
                action="vote",
                actor=self.actor,
                channel=self.channel,
                values={},
                detail={
                    "approved": self.approved,
                    "approvals": tally.approvals,
                    "rejections": tally.rejections,
                    "required": policy.approvals_required,
                },
                check=unchanged,
                events=progress_rows,
            )
        if isinstance(outcome, Refused):
            return outcome
        await self._record(conn, mine)
        return Voted(outcome, votes)

    async def _record(self, conn: AsyncConnection, vote: ApprovalView) -> None:
        # The id binds the sealed answer to its row, so the row comes first.
        vote_id = (
            await conn.execute(
                insert(TaskVoteRow)
                .values(
                    task_id=self.task_id,
                    user_id=vote.user_id,
                    email=vote.email,
                    display_name=vote.display_name,
                    channel=vote.channel,
                    at=vote.at,
                    approved=vote.approved,
                    response_enc=b"",
                )
                .returning(TaskVoteRow.id)
            )
        ).scalar_one()
        sealed = self.ctx.sealer.seal_json(self.answer, aad=vote_aad(str(vote_id)))
        await conn.execute(
            update(TaskVoteRow).where(TaskVoteRow.id == vote_id).values(response_enc=sealed)
        )

    def after(self, result: Voted | Refused) -> None:
        if not isinstance(result, Voted):
            return
        task = result.moved.task
        response = self.answer if task.status is TaskStatus.COMPLETED else None
        self.ctx.hub.publish(snapshot_of(task, response, approvals=result.votes))
        if result.moved.outbox_rows:
            self.ctx.wake.outbox()


async def cast(ctx: ServerContext, vote: CastVote) -> Voted | Refused:
    """Queue ``vote`` with the writer; a second vote by the same person that slipped past
    the count (another process, same instant) is refused by the unique row."""
    try:
        return await ctx.writer.submit(vote)
    except IntegrityError:
        return Refused(vote.task_id, None, ALREADY_VOTED)
