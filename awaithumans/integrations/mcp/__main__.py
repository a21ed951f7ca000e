"""``python -m awaithumans.integrations.mcp``: ``awaithumans mcp`` without the server extra.

The ``awaithumans`` command lives in the server extra; an agent's machine with only
``awaithumans[mcp]`` installed runs the MCP server this way.
"""

import sys

from awaithumans.integrations.mcp._command import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m awaithumans.integrations.mcp"))
