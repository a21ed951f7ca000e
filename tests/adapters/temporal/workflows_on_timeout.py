"""A workflow that asks with an ``on_timeout`` default; imported by the Temporal sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from awaithumans import is_default
    from awaithumans.adapters.temporal import await_human
    from tests.adapters.temporal.workflows import Decision, Refund


@dataclass
class DefaultInput:
    # None: the server signals the workflow itself (AWAITHUMANS_TEMPORAL_ADDRESS).
    callback_url: str | None
    timeout_seconds: int = 600


@workflow.defn
class AskWithDefaultWorkflow:
    @workflow.run
    async def run(self, arg: DefaultInput) -> dict[str, Any]:
        answer = await await_human(
            task="Approve refund, or refuse by default?",
            payload_schema=Refund,
            payload=Refund(amount=25),
            response_schema=Decision,
            timeout_seconds=arg.timeout_seconds,
            callback_url=arg.callback_url,
            on_timeout=Decision(approved=False),
        )
        return {"approved": answer.approved, "by_default": is_default(answer)}
