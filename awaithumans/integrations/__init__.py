"""Where agents already are: each module meets one agent framework or protocol.

``awaithumans.integrations.mcp`` (an MCP server of ``ask_human``/``get_answer``, and an
elicitation bridge for MCP clients), ``pydantic_ai`` (deferred tool approvals) and
``openai_agents`` (``needs_approval`` tools). Each is an extra (``awaithumans[mcp]``, ...)
and is imported only when asked for: ``import awaithumans`` loads none of them.
"""
