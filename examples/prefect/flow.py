"""A refund flow that waits for a reviewer before any money moves.

    python flow.py ORDER_ID AMOUNT_CENTS

``look_up_order`` runs, then ``await_human_sync`` pauses the flow run until a person approves or
declines in awaithumans; the run shows as Paused in Prefect meanwhile, with the question as
its expected input. ``serve.py`` serves the same flow as a deployment that suspends
instead, so no process waits at all.
"""

from __future__ import annotations

import os
import sys

from prefect import flow, task
from pydantic import BaseModel, Field

from awaithumans.adapters.prefect import await_human_sync


class RefundRequest(BaseModel):
    order_id: str
    customer_id: str
    amount_cents: int = Field(gt=0)
    reason: str


class RefundDecision(BaseModel):
    approved: bool = Field(description="Send the money back?")
    notes: str = Field(default="", description="Why, for the customer's file")


# The results of tasks before a suspend are kept, so the re-run does not do them again.
@task(persist_result=True)
def look_up_order(order_id: str, amount_cents: int) -> RefundRequest:
    # A stand-in for the order system; the customer id is made up from the order id.
    return RefundRequest(
        order_id=order_id,
        customer_id=f"cus_{order_id[-4:]}",
        amount_cents=amount_cents,
        reason="Customer reports a duplicate charge",
    )


@task
def issue_refund(request: RefundRequest, notes: str) -> str:
    return f"refunded {request.amount_cents} cents to {request.customer_id}: {notes}"


@flow(name="refund")
def refund(order_id: str, amount_cents: int, suspend: bool = False) -> str:
    request = look_up_order(order_id, amount_cents)
    decision = await_human_sync(
        task=f"Refund {amount_cents / 100:.2f} USD for order {order_id}?",
        payload_schema=RefundRequest,
        payload=request,
        response_schema=RefundDecision,
        timeout_seconds=24 * 3600,
        suspend=suspend,
        # Suspended runs are resumed by the relay (`awaithumans relay prefect`).
        callback_url=os.environ.get("RELAY_URL") if suspend else None,
    )
    if not decision.approved:
        return f"refund declined: {decision.notes}"
    return issue_refund(request, decision.notes)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python flow.py ORDER_ID AMOUNT_CENTS")
    print(refund(sys.argv[1], int(sys.argv[2])), flush=True)
