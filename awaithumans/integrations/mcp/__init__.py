"""awaithumans for the Model Context Protocol: a server of human questions, and a bridge.

- ``awaithumans mcp`` (or ``python -m awaithumans.integrations.mcp``) serves the tools
  ``ask_human`` and ``get_answer`` to MCP clients (stdio or streamable HTTP):
  :func:`build_server` is that server, for mounting it yourself.
- :func:`elicitation_handler` is the ``elicitation_callback`` for an agent's MCP client
  session: MCP servers' questions to the user are answered by a person, through awaithumans.

Importing this package imports the ``mcp`` SDK (``awaithumans[mcp]``); ``import
awaithumans`` does not.
"""

from awaithumans.core._extras import require_extra

require_extra("awaithumans.integrations.mcp", "mcp", "mcp")

from awaithumans.integrations.mcp._command import main  # noqa: E402
from awaithumans.integrations.mcp._elicitation import elicitation_handler  # noqa: E402
from awaithumans.integrations.mcp._questions import (  # noqa: E402
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WAIT_SECONDS,
    Desk,
    ToolRefusal,
)
from awaithumans.integrations.mcp._server import build_server  # noqa: E402

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "DEFAULT_WAIT_SECONDS",
    "Desk",
    "ToolRefusal",
    "build_server",
    "elicitation_handler",
    "main",
]
