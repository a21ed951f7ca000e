"""An OpenAI Agents SDK agent whose refunds wait for a person's approval, through awaithumans.

Start a server (`awaithumans dev`), then:

    OPENAI_API_KEY=sk-... python agent.py "Refund order ord_7, the customer was charged twice"

The agent may look orders up freely; each call to `refund` (a `needs_approval` tool) becomes
a task. Open the printed Review URL and approve it, or deny it with a message for the agent.
Stop the script while it waits and run it again (without a prompt): it resumes the run from
the `RunState` saved in `pending-run.json` and finds the same task.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Literal, cast

from agents import Agent, function_tool, set_default_openai_api

from awaithumans.integrations.openai_agents import resume_with_approvals, run_with_approvals

MODEL = os.environ.get("OPENAI_MODEL", "gpt-5")
# "chat_completions" for providers that speak only that API (OPENAI_BASE_URL points there).
set_default_openai_api(
    cast(Literal["responses", "chat_completions"], os.environ.get("OPENAI_API", "responses"))
)
SAVED = Path(os.environ.get("PENDING_RUN", "pending-run.json"))

ORDERS = {"ord_7": {"customer": "cus_42", "amount_usd": 42, "status": "charged twice"}}


@function_tool
def lookup_order(order_id: str) -> dict[str, object]:
    """What we know about an order."""
    return ORDERS.get(order_id, {"error": "no such order"})


@function_tool(needs_approval=True)
def refund(order_id: str, amount_usd: int) -> str:
    """Send money back to the customer of an order (a person approves each call)."""
    print(f"REFUNDED {amount_usd} USD on {order_id}", flush=True)
    return f"Refunded {amount_usd} USD on {order_id}."


agent = Agent(
    name="refunds",
    model=MODEL,
    instructions="You handle refund requests. Look the order up, then refund it if warranted.",
    tools=[lookup_order, refund],
)


def save(state: str) -> None:
    """Keep the interrupted run, so a restart resumes it and finds the same approval tasks."""
    SAVED.write_text(state)
    print("waiting for a person", flush=True)


async def run(prompt: str, saved: str | None) -> str:
    # notify=["slack:#refunds"], approvers=["role:finance"], approvals_required=2, ... go
    # with timeout_seconds: each is an await_human parameter for every approval's task.
    if saved is not None:
        result = await resume_with_approvals(agent, saved, on_state=save, timeout_seconds=3600)
    else:
        result = await run_with_approvals(agent, prompt, on_state=save, timeout_seconds=3600)
    return str(result.final_output)


def main() -> None:
    saved = SAVED.read_text() if SAVED.exists() else None
    output = asyncio.run(run(" ".join(sys.argv[1:]) or "Refund order ord_7.", saved))
    SAVED.unlink(missing_ok=True)
    print(f"AGENT: {output}")


if __name__ == "__main__":
    main()
