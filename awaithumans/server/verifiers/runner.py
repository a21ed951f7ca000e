"""The verification job: an answer under check goes to the model, the verdict to the task.

The outbox hands this handler the ``verify`` job written with the task's move to
``submitted`` (so a crash loses nothing: the job waits in the database, and the next
process takes it). It asks the task's provider for a verdict, at most ``concurrency`` calls
at once and each within ``timeout_seconds``, and applies it through the lifecycle. Without a
verdict (provider down, slow, malformed) the task keeps its attempts, shows the trouble,
and the outbox tries again with backoff capped at ``retry_max_seconds``, until a verdict
lands or the task ends (its deadline, a cancel).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from sqlalchemy import select

from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import AuditRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.errors import ApiError
from awaithumans.server.services.delivery import Job, Outcome, RetryPolicy
from awaithumans.server.services.events import VERIFY
from awaithumans.server.services.lifecycle import Refused
from awaithumans.server.services.outbox import CONCURRENCY as OUTBOX_CONCURRENCY
from awaithumans.server.services.verification import (
    ApplyVerdict,
    Judgement,
    RecordTrouble,
    Submission,
)
from awaithumans.server.services.verifier_gate import config_of
from awaithumans.server.verifiers.judges import Judges, model_for
from awaithumans.server.verifiers.prompt import Check, build_prompt
from awaithumans.server.verifiers.providers import short
from awaithumans.server.verifiers.verdict import ProviderError, Verdict
from awaithumans.verifiers import VerifierConfig

log = logging.getLogger("awaithumans.server.verifier")


class VerificationRunner:
    """The outbox's handler for ``verify`` jobs."""

    name = VERIFY

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._settings = ctx.settings.verifier
        self._slots = asyncio.Semaphore(self._settings.concurrency)
        self._judges = Judges(self._settings)

    def policy(self) -> RetryPolicy:
        """Retry until the task ends. A claim outlasts the wait for a call slot (the outbox
        may hold more jobs than there are slots) plus the call itself, so a live process
        never sees its job taken by another."""
        timeout = self._settings.timeout_seconds
        rounds = math.ceil(OUTBOX_CONCURRENCY / self._settings.concurrency)
        return RetryPolicy(
            max_attempts=None,
            max_backoff_seconds=self._settings.retry_max_seconds,
            claim_seconds=(rounds + 1) * timeout + 5,
        )

    async def deliver(self, job: Job) -> Outcome:
        task = job.task
        attempt = int(job.body.get("attempt") or 0)
        if task.status is not TaskStatus.SUBMITTED or task.verification_attempt != attempt - 1:
            return Outcome.skip("the answer is no longer waiting for verification")
        submission = Submission.opened(self._ctx.sealer, task)
        if submission is None or task.verifier_config is None:
            return Outcome.skip("no answer is stored for verification")
        config = config_of(task.verifier_config)
        check = Check(
            instructions=config.instructions,
            task=task.task,
            # The outbox already withholds a redacted payload: the model never sees it.
            payload=job.payload,
            response_schema=task.response_schema,
            answer=submission.response,
            text=submission.text,
            # Earlier verdicts exist only from the second attempt on.
            previous_reasons=await self._earlier_reasons(task.id) if attempt > 1 else (),
        )
        started = time.monotonic()
        try:
            verdict = await self._ask(config, check)
            judgement = await self._judgement(task, config, submission, verdict, attempt, started)
        except ProviderError as exc:
            return await self._trouble(task, exc.message)
        moved = await self._ctx.writer.submit(
            ApplyVerdict(self._ctx, task.id, judgement, submission, config.max_attempts)
        )
        if isinstance(moved, Refused):
            return Outcome.skip(f"the task moved on before the verdict ({moved.current})")
        return Outcome.ok()

    async def _ask(self, config: VerifierConfig, check: Check) -> Verdict:
        judge = await self._judges.for_config(config)
        prompt = build_prompt(check)
        timeout = self._settings.timeout_seconds
        async with self._slots:
            # Timed inside the slot: the provider's time, not the wait for a free slot.
            started = time.monotonic()
            result = None  # stays None when cancelled (the server stopping): not a call's time
            try:
                async with asyncio.timeout(timeout):
                    verdict = await judge.judge(prompt, model_for(config))
                result = "verdict"
                return verdict
            except TimeoutError:
                result = "timeout"
                raise ProviderError(f"no verdict within {timeout:g} s") from None
            except ProviderError:
                result = "error"
                raise
            except Exception as exc:
                result = "error"
                # An SDK error outside its own hierarchy (a transport's): no verdict either.
                log.warning("verifier %s failed", config.provider, exc_info=True)
                raise ProviderError(short(exc)) from exc
            finally:
                if result is not None:
                    elapsed = time.monotonic() - started
                    self._ctx.metrics.verifier_call(config.provider, result, elapsed)

    async def _judgement(
        self,
        task: TaskRecord,
        config: VerifierConfig,
        submission: Submission,
        verdict: Verdict,
        attempt: int,
        started: float,
    ) -> Judgement:
        """The verdict, checked against the task: a parsed reply must fit the schema.

        Raises:
            ProviderError: The model passed a free-text reply without a parsed answer, or
                parsed one that does not fit the response schema: its failure, not the
                person's.
        """
        response = submission.response
        if submission.text is not None:
            response = verdict.parsed_response
            if verdict.passed and response is None:
                raise ProviderError("the model passed a free-text reply without parsing it")
            if response is not None:
                try:
                    problems = await self._ctx.schemas.errors(
                        task.response_schema, response, which="response", stored=True
                    )
                except ApiError as exc:
                    raise ProviderError(
                        f"the parsed answer could not be checked: {exc.message}"
                    ) from None
                if problems:
                    first = problems[0]
                    where = ".".join(str(p) for p in first.get("loc", [])) or "(root)"
                    raise ProviderError(
                        f"the model's parsed answer does not fit the response schema"
                        f" ({where}: {first.get('msg')})"
                    )
        detail: dict[str, Any] = {
            "provider": config.provider,
            "model": verdict.model,
            "usage": verdict.usage.as_json(),
            "ms": round((time.monotonic() - started) * 1000),
            "free_text": submission.text is not None,
        }
        return Judgement(attempt, verdict.passed, verdict.reason, response, detail)

    async def _trouble(self, task: TaskRecord, message: str) -> Outcome:
        log.warning("verification of %s: %s", task.id, message)
        await self._ctx.writer.submit(RecordTrouble(self._ctx, task, message))
        return Outcome.fail(message)

    async def _earlier_reasons(self, task_id: str) -> list[str]:
        async with self._ctx.engine.connect() as conn:
            rows = await conn.execute(
                select(AuditRow.detail)
                .where(AuditRow.task_id == task_id, AuditRow.action == "rejected")
                .order_by(AuditRow.id)
            )
            details = [d for (d,) in rows]
        return [str(d["reason"]) for d in details if isinstance(d, dict) and d.get("reason")]

    async def aclose(self) -> None:
        await self._judges.aclose()
