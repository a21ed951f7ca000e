"""A refund that waits for a person's approval inside a Temporal workflow.

The workflow asks through ``await_human`` and sleeps durably until the answer comes back:
no worker slot, thread or connection is held while the reviewer thinks, and the wait
survives worker restarts. If the refund is approved, an activity pays it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow

# Libraries are imported through the sandbox untouched, as Temporal recommends.
with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from awaithumans import TaskTimeoutError
    from awaithumans.adapters.temporal import await_human


class RefundRequest(BaseModel):
    """What the reviewer sees."""

    order_id: str
    customer_id: str
    amount_usd: int = Field(description="Amount to send back, in dollars")
    reason: str


class RefundDecision(BaseModel):
    """What the reviewer answers."""

    approved: bool = Field(description="Send the money back?")
    notes: str | None = Field(default=None, description="Anything the agent should know")


@dataclass
class RefundInput:
    """The workflow's argument.

    ``callback_url`` is where ``awaithumans relay temporal`` listens: the server posts the
    task's outcome there and the relay signals it into this workflow.
    """

    order_id: str
    customer_id: str
    amount_usd: int
    reason: str
    callback_url: str
    review_seconds: int = 15 * 60


@activity.defn
async def issue_refund(order_id: str, amount_usd: int) -> str:
    """Pay the refund out. A stand-in for the payment provider's API; returns its reference."""
    activity.logger.info("refunding $%s for %s", amount_usd, order_id)
    return f"re_{order_id}"


@workflow.defn
class RefundWorkflow:
    @workflow.run
    async def run(self, arg: RefundInput) -> str:
        request = RefundRequest(
            order_id=arg.order_id,
            customer_id=arg.customer_id,
            amount_usd=arg.amount_usd,
            reason=arg.reason,
        )
        try:
            decision = await await_human(
                task=f"Approve a ${arg.amount_usd} refund for order {arg.order_id}?",
                payload_schema=RefundRequest,
                payload=request,
                response_schema=RefundDecision,
                timeout_seconds=arg.review_seconds,
                callback_url=arg.callback_url,
            )
        except TaskTimeoutError:
            return f"Refund for {arg.order_id} not reviewed in time; left for a person to pick up"
        if not decision.approved:
            return f"Refund for {arg.order_id} rejected: {decision.notes or 'no reason given'}"
        reference = await workflow.execute_activity(
            issue_refund,
            args=[arg.order_id, arg.amount_usd],
            start_to_close_timeout=timedelta(seconds=30),
        )
        note = f": {decision.notes}" if decision.notes else ""
        return f"Refund for {arg.order_id} approved and paid ({reference}){note}"
