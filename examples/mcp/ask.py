"""A tiny MCP client: ask a person through `awaithumans mcp`, as an agent's host would.

It launches the MCP server over stdio (as Claude Desktop does with its config), calls
``ask_human``, and while the answer is ``waiting`` calls ``get_answer`` again, as a model
told so by the result would. Run next to `awaithumans dev` (or with AWAITHUMANS_URL and
AWAITHUMANS_API_KEY set):

    python examples/mcp/ask.py
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp import Client, StdioServerParameters

QUESTION = {
    "task": "Publish the v2.3 release notes to the blog?",
    "payload": {"title": "What's new in 2.3", "words": 640, "author": "docs-bot"},
    "response_schema": {
        "type": "object",
        "properties": {
            "publish": {"type": "boolean", "title": "Publish now?"},
            "note": {"type": "string", "title": "Note for the author"},
        },
        "required": ["publish"],
    },
    "timeout_seconds": 3600,
}


async def main() -> int:
    # The same interpreter, so the MCP server runs from this environment's awaithumans.
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "awaithumans.integrations.mcp"], env=dict(os.environ)
    )
    async with Client(server) as client:
        result = await client.call_tool("ask_human", QUESTION)
        outcome: dict[str, Any] = dict(result.structured_content or {})
        if not result.is_error:
            print(f"Asked: {outcome['task_id']} (review at {outcome['review_url']})", flush=True)
        while not result.is_error and outcome["status"] == "waiting":
            result = await client.call_tool("get_answer", {"task_id": outcome["task_id"]})
            outcome = dict(result.structured_content or {})
    if result.is_error:
        # A refusal (or, mid-wait, the server unreachable): {"error": CODE, "message": ...}.
        print(f"refused: {outcome.get('error')}: {outcome.get('message')}", file=sys.stderr)
        return 1
    if outcome["status"] != "completed":
        print(f"No answer: {outcome['status']}")
        return 1
    answer = outcome["response"]
    verdict = "publish" if answer["publish"] else "hold"
    print(f"Decision: {verdict} ({answer.get('note') or 'no note'})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
