"""Workflows for the adapter's tests; imported by the Temporal sandbox, so kept minimal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from awaithumans.adapters.temporal import await_human


class Refund(BaseModel):
    amount: int


class Decision(BaseModel):
    approved: bool


@dataclass
class AskInput:
    # None: the server signals the workflow itself (AWAITHUMANS_TEMPORAL_ADDRESS).
    callback_url: str | None
    asks: int = 1
    timeout_seconds: int = 600


@workflow.defn
class AskWorkflow:
    @workflow.run
    async def run(self, arg: AskInput) -> list[dict[str, Any]]:
        answers = await asyncio.gather(
            *(
                await_human(
                    task=f"Approve refund #{i}?",
                    payload_schema=Refund,
                    payload=Refund(amount=10 * (i + 1)),
                    response_schema=Decision,
                    timeout_seconds=arg.timeout_seconds,
                    callback_url=arg.callback_url,
                )
                for i in range(arg.asks)
            )
        )
        return [a.model_dump() for a in answers]
