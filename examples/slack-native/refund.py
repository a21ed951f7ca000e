"""Slack: a refund approval sent to one person's Slack DMs, answered in Slack's modal.

Start a server that can reach Slack (see README.md: a bot token, and an app token for Socket
Mode), then run ``python refund.py you@acme.com``. The reviewer gets a direct message with
**Approve in Slack** (the form opens as a modal) and **Open in Dashboard** (a signed link that
signs them in for this one task). Whatever they choose, this script gets the typed answer.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel, Field

from awaithumans import await_human_sync


class RefundRequest(BaseModel):
    order_id: str
    amount_usd: int = Field(description="Amount to send back, in dollars")
    reason: str


class RefundDecision(BaseModel):
    approved: bool = Field(description="Send the money back?")
    notes: str | None = Field(default=None, description="Anything the agent should know")


def slack_route(reviewer: str) -> str:
    """``alice@acme.com``, ``@alice`` or ``U0123ABCD`` -> the route the server understands.

    Each names one person, so the message goes to their DMs and they become the task's
    assignee: the one allowed to answer it (operators may step in).
    """
    return reviewer if reviewer.startswith(("slack:", "slack+")) else f"slack:{reviewer}"


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python refund.py REVIEWER [ORDER_ID]", file=sys.stderr)
        print("  REVIEWER: their Slack email, @handle or member id (U...)", file=sys.stderr)
        return 2
    reviewer, order_id = argv[1], argv[2] if len(argv) == 3 else "ord_1042"
    decision = await_human_sync(
        task=f"Refund $180 for order {order_id}?",
        payload_schema=RefundRequest,
        payload=RefundRequest(order_id=order_id, amount_usd=180, reason="Arrived broken"),
        response_schema=RefundDecision,
        timeout_seconds=3600,
        notify=[slack_route(reviewer)],
        # One task per order: running the script again waits on the same DM.
        idempotency_key=f"slack-refund:{order_id}",
    )
    verdict = "approved" if decision.approved else "declined"
    print(f"Refund for {order_id} {verdict}: {decision.notes or 'no notes'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
