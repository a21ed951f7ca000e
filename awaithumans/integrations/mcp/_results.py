"""The ``CallToolResult`` of an outcome or a refusal: one shape for the plain tool call and
for ``tasks/result``, which must return what the plain call would have."""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, TextContent

from awaithumans.integrations.mcp._questions import ToolRefusal


def tool_result(result: dict[str, Any]) -> CallToolResult:
    """An outcome (answer, waiting, timed out...) as structured content and as JSON text."""
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(result, ensure_ascii=False))],
        structured_content=result,
    )


def tool_refusal(refusal: ToolRefusal) -> CallToolResult:
    """Bad input or the server's refusal: an error result whose JSON carries the code."""
    body = refusal.body()
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(body, ensure_ascii=False))],
        structured_content=body,
        is_error=True,
    )
