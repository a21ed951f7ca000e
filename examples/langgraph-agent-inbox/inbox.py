"""Answer a waiting thread the way LangChain's Agent Inbox does, and print what the graph did.

    python inbox.py TICKET accept
    python inbox.py TICKET edit '{"subject": "Your refund"}'
    python inbox.py TICKET response 'Ask for the order number first.'
    python inbox.py TICKET ignore

The Agent Inbox resumes a thread with ``Command(resume=[{"type": ..., "args": ...}])``:
``args`` is None for accept and ignore, the person's words for response, and for edit the
whole action request with the edited arguments (the inbox's form starts from the proposed
ones, so the fields given here are laid over them). The node records the decision on the
awaithumans task and returns it; the graph goes on to ``act``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from graph import CHECKPOINT_DB, build, thread_config
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command

from awaithumans.core import AwaitHumansError

USAGE = "usage: python inbox.py TICKET accept|ignore | edit JSON | response TEXT"


def resume_value(request: dict[str, Any], kind: str, given: str | None) -> list[dict[str, Any]]:
    if kind in ("accept", "ignore"):
        return [{"type": kind, "args": None}]
    if kind == "response" and given is not None:
        return [{"type": "response", "args": given}]
    if kind == "edit" and given is not None:
        proposed = request["action_request"]
        edited = {**proposed["args"], **json.loads(given)}
        return [{"type": "edit", "args": {"action": proposed["action"], "args": edited}}]
    sys.exit(USAGE)


async def main(ticket: str, kind: str, given: str | None) -> int:
    config = thread_config(ticket)
    async with AsyncSqliteSaver.from_conn_string(CHECKPOINT_DB) as saver:
        graph = build(saver)
        state = await graph.aget_state(config)
        if not state.interrupts:
            print(f"Ticket {ticket} waits for nobody: {state.values.get('outcome', 'not started')}")
            return 1
        (request,) = state.interrupts[0].value
        resume = resume_value(request, kind, given)
        print(f"resuming {config['configurable']['thread_id']} with {json.dumps(resume)}")
        try:
            done = await graph.ainvoke(Command(resume=resume), config)
        except AwaitHumansError as exc:
            # e.g. RESUME_NOT_ALLOWED: an answer the request's config does not allow.
            print(f"refused: {exc}")
            return 1
    print(f"finished {config['configurable']['thread_id']}: {done['outcome']}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(USAGE)
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], (sys.argv[3:] or [None])[0])))
