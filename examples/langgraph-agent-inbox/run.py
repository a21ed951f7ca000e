"""Start the reply graph for one ticket, print the request it waits on, and exit.

    python run.py TICKET

The thread stops at ``review``; answer it in awaithumans (``relay.py`` resumes it) or as
the Agent Inbox does (``inbox.py``).
"""

from __future__ import annotations

import asyncio
import json
import sys

from graph import CHECKPOINT_DB, RELAY_URL, build, thread_config
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from awaithumans.adapters.langgraph import INTERRUPT_KEY


async def main(ticket: str) -> None:
    config = thread_config(ticket)
    async with AsyncSqliteSaver.from_conn_string(CHECKPOINT_DB) as saver:
        graph = build(saver)
        state = await graph.aget_state(config)
        if state.values and not state.next:
            print(f"Ticket {ticket} is already done: {state.values.get('outcome')}")
            return
        # Invoking a thread with input starts it over (a second task): if it already
        # waits, show the same request again.
        pending = state.interrupts or (
            await graph.ainvoke({"ticket": ticket, "callback_url": RELAY_URL}, config)
        ).get("__interrupt__", ())
    # What the Agent Inbox lists: one request per interrupt.
    (request,) = pending[0].value
    info = request[INTERRUPT_KEY]
    allowed = [name.removeprefix("allow_") for name, on in request["config"].items() if on]
    print(f"Waiting for a person: {info['task']}")
    print(f"  action:    {request['action_request']['action']}")
    print(f"  args:      {json.dumps(request['action_request']['args'], sort_keys=True)}")
    print(f"  allowed:   {', '.join(allowed)}")
    print(f"  task:      {info['task_id']}")
    print(f"  review at: {info['review_url']}")
    print(f"  thread:    {config['configurable']['thread_id']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python run.py TICKET")
    asyncio.run(main(sys.argv[1]))
