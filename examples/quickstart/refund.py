"""Quickstart: ask a human to approve a refund and wait for the typed decision.

Start a server first (`awaithumans dev`), then run `python refund.py`. The SDK finds the dev
server and its token by itself; open the printed Review URL to answer.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from awaithumans import await_human_sync


class RefundRequest(BaseModel):
    amount_usd: int = Field(description="Amount to send back, in dollars")
    customer_id: str
    reason: str


class RefundDecision(BaseModel):
    approved: bool = Field(description="Send the money back?")
    notes: str | None = Field(default=None, description="Anything the agent should know")


def main() -> None:
    decision = await_human_sync(
        task="Approve $250 refund?",
        payload_schema=RefundRequest,
        payload=RefundRequest(amount_usd=250, customer_id="cus_demo", reason="Duplicate charge"),
        response_schema=RefundDecision,
        timeout_seconds=900,
        # One key per real-world event: re-running the script picks up the same task
        # (and its answer, if the human already gave one) instead of asking twice.
        idempotency_key="refund:order_demo",
    )
    verdict = "approved" if decision.approved else "rejected"
    print(f"Refund {verdict}: {decision.notes}")


if __name__ == "__main__":
    main()
