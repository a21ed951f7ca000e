"""A small support agent: refunds up to $100 go out at once, larger ones need a person,
and those over $1,000 two people of finance (the CFO or anyone with the finance role).

The code under test in this example; `test_support_agent.py` tests it with the fake human.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from awaithumans import await_human_sync


class RefundRequest(BaseModel):
    order_id: str
    amount_usd: int
    reason: str


class RefundDecision(BaseModel):
    approved: bool = Field(description="Send the money back?")
    notes: str | None = Field(default=None, description="What to tell the customer")


def handle_refund(order_id: str, amount_usd: int, reason: str) -> str:
    """What the agent replies to the customer."""
    if amount_usd <= 100:
        return f"Refunded ${amount_usd} for {order_id}."
    policy: dict[str, Any] = {}
    if amount_usd > 1000:
        # Only finance decides these, two of them; operators may not answer for them.
        policy = {
            "approvers": ["cfo@acme.com", "role:finance"],
            "operators_may_answer": False,
            "approvals_required": 2,
        }
    decision = await_human_sync(
        task=f"Approve a ${amount_usd} refund for {order_id}?",
        payload_schema=RefundRequest,
        payload=RefundRequest(order_id=order_id, amount_usd=amount_usd, reason=reason),
        response_schema=RefundDecision,
        timeout_seconds=24 * 3600,
        idempotency_key=f"refund:{order_id}",
        on_timeout=RefundDecision(approved=False, notes="No one could review it in time."),
        **policy,
    )
    if decision.approved:
        return f"Refunded ${amount_usd} for {order_id}."
    return f"Sorry, we cannot refund {order_id}: {decision.notes or 'declined'}"
