"""The same question as ``ask.py``, asked as a protocol task (MCP 2025-11-25).

The client negotiates 2025-11-25 (``mode="legacy"``: the initialize handshake), sends
``ask_human`` with a ``task`` field, gets the task back at once, shows its status from
``tasks/get`` and then blocks on ``tasks/result`` for the answer: no wait budget, no
``waiting`` / ``get_answer`` round. Run next to `awaithumans dev` (or with AWAITHUMANS_URL
and AWAITHUMANS_API_KEY set):

    python examples/mcp/ask_as_task.py
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.types import (
    CallToolResult,
    GetTaskPayloadRequest,
    GetTaskPayloadRequestParams,
    GetTaskRequest,
    GetTaskRequestParams,
    GetTaskResult,
)

TIMEOUT_SECONDS = 3600
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
    "timeout_seconds": TIMEOUT_SECONDS,
}


async def main() -> int:
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "awaithumans.integrations.mcp"], env=dict(os.environ)
    )
    async with Client(server, mode="legacy") as client:
        tasks = client.server_capabilities.tasks
        if tasks is None or tasks.requests is None or tasks.requests.tools is None:
            print("this server does not run tools as tasks", file=sys.stderr)
            return 1
        # The SDK's call_tool expects a CallToolResult back, so the task-augmented call
        # goes out as raw JSON-RPC on the session; the rest is typed.
        created: dict[str, Any] = await client.session._dispatcher.send_raw_request(
            "tools/call",
            {"name": "ask_human", "arguments": QUESTION, "task": {"ttl": 3_600_000}},
            {"timeout": 60},
        )
        if "task" not in created:  # refused before any task existed: the plain error result
            refused = CallToolResult.model_validate(created)
            print(f"refused: {refused.structured_content}", file=sys.stderr)
            return 1
        task_id: str = created["task"]["taskId"]
        status = await client.session.send_request(
            GetTaskRequest(params=GetTaskRequestParams(task_id=task_id)), GetTaskResult
        )
        print(f"Task {task_id}: {status.status}: {status.status_message}", flush=True)
        # Blocks until a person answers (or the task ends without an answer).
        result = await client.session.send_request(
            GetTaskPayloadRequest(params=GetTaskPayloadRequestParams(task_id=task_id)),
            CallToolResult,
            request_read_timeout_seconds=TIMEOUT_SECONDS,
        )
    outcome: dict[str, Any] = dict(result.structured_content or {})
    if result.is_error or outcome.get("status") != "completed":
        print(f"No answer: {outcome}", file=sys.stderr)
        return 1
    answer = outcome["response"]
    verdict = "publish" if answer["publish"] else "hold"
    print(f"Decision: {verdict} ({answer.get('note') or 'no note'})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
