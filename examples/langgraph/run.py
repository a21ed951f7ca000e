"""Start the refund graph for one order, print where to review it, and exit.

    python run.py ORDER_ID AMOUNT_CENTS

The graph stops at the approval; nothing keeps running here. ``relay.py`` finishes it.
"""

from __future__ import annotations

import asyncio
import sys

from graph import CHECKPOINT_DB, RELAY_URL, build, thread_config
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from awaithumans.adapters.langgraph import INTERRUPT_KEY


async def main(order_id: str, amount_cents: int) -> None:
    config = thread_config(order_id)
    async with AsyncSqliteSaver.from_conn_string(CHECKPOINT_DB) as saver:
        graph = build(saver)
        state = await graph.aget_state(config)
        if state.values and not state.next:
            print(f"Order {order_id} is already done: {state.values.get('outcome')}")
            return
        # Invoking a thread with new input starts it over, and a restarted approval would be
        # a second task: if the thread already waits for its reviewer, just show it again.
        pending = state.interrupts or (
            await graph.ainvoke(
                {"order_id": order_id, "amount_cents": amount_cents, "callback_url": RELAY_URL},
                config,
            )
        ).get("__interrupt__", ())
    info = pending[0].value[INTERRUPT_KEY]
    print(f"Waiting for a reviewer: {info['task']}")
    print(f"  task:      {info['task_id']}")
    print(f"  review at: {info['review_url']}")
    print(f"  thread:    {config['configurable']['thread_id']}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python run.py ORDER_ID AMOUNT_CENTS")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
