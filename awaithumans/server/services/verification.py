"""Answers under verification: stored first, judged in the background, never lost.

A human's answer to a task with a verifier moves the task to ``submitted`` at once, with
the answer sealed on the task (:class:`Submission`) and, in the same transaction, the
verification job in the outbox (``lifecycle`` writes it). The job's verdict then moves the
task on (:class:`ApplyVerdict`): ``completed`` with the answer (the parsed one, for a
free-text reply), ``rejected`` with the reason (the human answers again, and that is the
next attempt), or ``verification_exhausted`` after ``max_attempts`` rejections. A provider
that fails uses no attempt: the task stays ``submitted`` with the trouble on it
(:class:`RecordTrouble`) and the job is tried again with backoff, until a verdict or the
task's deadline; an operator can ask for the next try now (:class:`RetryNow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import OutboxRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.principals import VERIFIER, Principal
from awaithumans.server.security import Sealer
from awaithumans.server.services.decision_receipts import completion_values
from awaithumans.server.services.events import VERIFY
from awaithumans.server.services.lifecycle import (
    ANSWERABLE,
    Channel,
    Moved,
    Refused,
    annotate,
)
from awaithumans.server.services.task_actions import TaskAction
from awaithumans.server.services.views import open_for, seal_for, snapshot_of
from awaithumans.server.services.writer import Write

S = TaskStatus


@dataclass(frozen=True, slots=True)
class Submission:
    """One answer waiting for (or refused by) the verifier, as sealed on the task."""

    response: dict[str, Any] | None
    text: str | None
    by: dict[str, str | None]
    channel: str

    @classmethod
    def of(
        cls,
        who: Principal,
        channel: Channel,
        response: dict[str, Any] | None,
        text: str | None,
    ) -> Submission:
        by = {
            "id": who.id,
            "email": who.email,
            "display_name": who.display_name or who.label,
        }
        return cls(response, text, by, channel.value)

    def seal(self, sealer: Sealer, task_id: str) -> bytes:
        return seal_for(
            sealer,
            task_id,
            {"response": self.response, "text": self.text, "by": self.by, "channel": self.channel},
        )

    @classmethod
    def opened(cls, sealer: Sealer, task: TaskRecord) -> Submission | None:
        value = open_for(sealer, task.id, task.submission_enc)
        if value is None:
            return None
        response, text, by = value.get("response"), value.get("text"), value.get("by")
        return cls(
            response if isinstance(response, dict) else None,
            text if isinstance(text, str) else None,
            by if isinstance(by, dict) else {},
            str(value.get("channel") or Channel.SYSTEM.value),
        )


class Submit(TaskAction):
    """A human's answer lands for verification (the task has a verifier)."""

    to = S.SUBMITTED
    action = "submitted"
    allowed_from = ANSWERABLE

    def __init__(
        self,
        ctx: ServerContext,
        task_id: str,
        actor: Principal,
        channel: Channel,
        submission: Submission,
    ) -> None:
        super().__init__(ctx, task_id, actor, channel)
        self.submission = submission

    def check(self, task: TaskRecord) -> str | None:
        return self.answer_refusal(task)

    def values(self) -> dict[str, Any]:
        return {
            "submission_enc": self.submission.seal(self.ctx.sealer, self.task_id),
            "verification_error": None,
        }

    def detail(self) -> dict[str, Any] | None:
        answer = self.submission.response
        if answer is not None:
            return {"fields": sorted(answer)}
        return {"free_text": True}


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict on one attempt, ready to apply; ``response`` is what completes the task."""

    attempt: int
    passed: bool
    reason: str
    response: dict[str, Any] | None
    #: For the audit trail: provider, model, tokens, milliseconds, parsed or not.
    detail: dict[str, Any]


class ApplyVerdict(TaskAction):
    """The verifier's verdict on the answer under check moves the task on."""

    action = "verified"
    allowed_from = frozenset({S.SUBMITTED})

    def __init__(
        self,
        ctx: ServerContext,
        task_id: str,
        judgement: Judgement,
        submission: Submission,
        max_attempts: int,
    ) -> None:
        super().__init__(ctx, task_id, VERIFIER, Channel.VERIFIER)
        self.judgement = judgement
        self.submission = submission
        if judgement.passed:
            self.to = S.COMPLETED
        elif judgement.attempt >= max_attempts:
            self.to = S.VERIFICATION_EXHAUSTED
        else:
            self.to = S.REJECTED
        self.action = {
            S.COMPLETED: "verified",
            S.REJECTED: "rejected",
            S.VERIFICATION_EXHAUSTED: "verification_exhausted",
        }[self.to]

    def check(self, task: TaskRecord) -> str | None:
        # Another verdict on this same answer got there first (a job run twice).
        return None if task.verification_attempt == self.judgement.attempt - 1 else "STALE"

    def values(self) -> dict[str, Any]:
        judged = self.judgement
        values: dict[str, Any] = {
            "verification_attempt": judged.attempt,
            "verification_reason": judged.reason,
            "verification_error": None,
        }
        if self.to is S.COMPLETED:
            by = self.submission.by
            values.update(
                response_enc=seal_for(self.ctx.sealer, self.task_id, judged.response or {}),
                completed_at=utcnow(),
                completed_by_user_id=by.get("id"),
                completed_by_email=by.get("email"),
                completed_by_display_name=by.get("display_name"),
                completed_via_channel=self.submission.channel,
            )
        return values

    def detail(self) -> dict[str, Any] | None:
        judged = self.judgement
        return {
            "attempt": judged.attempt,
            "passed": judged.passed,
            "reason": judged.reason,
            **judged.detail,
        }

    def response(self) -> dict[str, Any] | None:
        return self.judgement.response if self.to is S.COMPLETED else None

    def derive(self, task: TaskRecord) -> dict[str, Any]:
        if self.to is not S.COMPLETED:
            return {}
        # The receipt names the person whose answer passed, not the verifier.
        by = self.submission.by
        return completion_values(
            self.ctx,
            task,
            response=self.judgement.response or {},
            answered_by={
                "id": by.get("id"),
                "email": by.get("email"),
                "label": by.get("display_name"),
            },
            channel=self.submission.channel,
        )


class RecordTrouble(Write[Moved | Refused]):
    """The provider gave no verdict: say so on the task, use no attempt.

    An audit row is written when the trouble changes (not for every retry of the same
    outage); the task's version moves either way, so open pages show the latest try.
    """

    def __init__(self, ctx: ServerContext, task: TaskRecord, message: str) -> None:
        self.ctx = ctx
        self.task = task
        self.message = message

    async def apply(self, conn: AsyncConnection) -> Moved | Refused:
        before = self.task.verification_error or {}
        error = {
            "code": ErrorCode.VERIFIER_PROVIDER_ERROR.value,
            "message": self.message,
            "at": utcnow().isoformat(),
            "tries": int(before.get("tries") or 0) + 1,
        }
        return await annotate(
            conn,
            self.task.id,
            status=S.SUBMITTED,
            action="verifier_error",
            actor=VERIFIER,
            channel=Channel.VERIFIER,
            values={"verification_error": error},
            detail={"code": error["code"], "message": self.message},
            audited=before.get("message") != self.message,
        )

    def after(self, result: Moved | Refused) -> None:
        if isinstance(result, Moved):
            self.ctx.hub.publish(snapshot_of(result.task, None))


class RetryNow(Write[bool]):
    """An operator asks for the pending verification of a task to be tried now."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id

    async def apply(self, conn: AsyncConnection) -> bool:
        result = await conn.execute(
            update(OutboxRow)
            .where(
                OutboxRow.task_id == self.task_id,
                OutboxRow.kind == VERIFY,
                OutboxRow.status == "pending",
            )
            .values(next_attempt_at=utcnow(), claimed_until=None)
        )
        return result.rowcount > 0


async def retry_now(ctx: ServerContext, task_id: str) -> bool:
    """Try the task's pending verification now; False if none is waiting."""
    found = await ctx.writer.submit(RetryNow(task_id))
    if found:
        ctx.wake.outbox()
    return found
