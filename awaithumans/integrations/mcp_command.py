"""``awaithumans mcp``: the command's door, importable without the ``mcp`` extra.

The console script hands ``mcp ...`` here before it imports the server stack, so an agent's
machine with only ``awaithumans[mcp]`` runs it; without the extra it says which to install.
"""

from __future__ import annotations

import sys

from awaithumans.core import MissingExtraError


def run(argv: list[str]) -> int:
    try:
        from awaithumans.integrations.mcp import main
    except MissingExtraError as exc:
        print(f"awaithumans mcp: {exc.message}", file=sys.stderr)
        return 2
    return main(argv)
