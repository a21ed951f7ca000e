"""A Pydantic AI agent whose refunds wait for a person's approval, through awaithumans.

Start a server (`awaithumans dev`), then:

    OPENAI_API_KEY=sk-... python agent.py "Refund order ord_7, the customer was charged twice"

The agent may look orders up freely; each call to `refund` becomes a task. Open the printed
Review URL and approve it, deny it with a message for the agent, or change the amount before
approving. Stop the script while it waits and run it again (without a prompt): it picks the
run up from `pending-run.json` and finds the same task.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter

from awaithumans.integrations.pydantic_ai import run_with_approvals

# Any Pydantic AI model name; "test" (Pydantic AI's TestModel) runs without a key.
MODEL = os.environ.get("MODEL", "openai:gpt-5")
SAVED = Path(os.environ.get("PENDING_RUN", "pending-run.json"))

ORDERS = {"ord_7": {"customer": "cus_42", "amount_usd": 42, "status": "charged twice"}}

agent = Agent(
    MODEL,
    name="refunds",
    instructions="You handle refund requests. Look the order up, then refund it if warranted.",
)


@agent.tool_plain
def lookup_order(order_id: str) -> dict[str, object]:
    """What we know about an order."""
    return ORDERS.get(order_id, {"error": "no such order"})


@agent.tool_plain(requires_approval=True)
def refund(order_id: str, amount_usd: int) -> str:
    """Send money back to the customer of an order (a person approves each call)."""
    print(f"REFUNDED {amount_usd} USD on {order_id}", flush=True)
    return f"Refunded {amount_usd} USD on {order_id}."


def save(messages: list[ModelMessage], requests: DeferredToolRequests) -> None:
    """Keep the run where it stopped, so a restart finds the same approval tasks."""
    SAVED.write_bytes(ModelMessagesTypeAdapter.dump_json(messages))
    print(f"waiting for a person on {len(requests.approvals)} call(s)", flush=True)


async def run(prompt: str | None, history: list[ModelMessage] | None) -> str:
    result = await run_with_approvals(
        agent,
        prompt,
        message_history=history,
        on_pending=save,
        timeout_seconds=3600,
        # notify=["slack:#refunds"], approvers=["role:finance"], approvals_required=2, ...
    )
    return str(result.output)


def main() -> None:
    history = ModelMessagesTypeAdapter.validate_json(SAVED.read_bytes()) if SAVED.exists() else None
    prompt = None if history else (" ".join(sys.argv[1:]) or "Refund order ord_7.")
    output = asyncio.run(run(prompt, history))
    SAVED.unlink(missing_ok=True)
    print(f"AGENT: {output}")


if __name__ == "__main__":
    main()
