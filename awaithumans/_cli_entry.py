"""The ``awaithumans`` console script. The CLI lives in the server extra; say so if absent."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["version"], ["--version"]):
        # Answer at once: importing the server stack for this costs a second or two.
        from importlib.metadata import version

        print(f"awaithumans {version('awaithumans')}")
        return 0
    if args[:1] == ["mcp"]:
        # An agent-side command: it needs the mcp extra, not the server's.
        from awaithumans.integrations.mcp_command import run as run_mcp

        return run_mcp(args[1:])
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401

        # Inside the try: the server needs more of the extra than the three above
        # (pydantic_settings, argon2, ...); a partial install must get the hint, not a traceback.
        from awaithumans.server.cli.main import run
    except ImportError as exc:
        if exc.name is None or exc.name.partition(".")[0] == "awaithumans":
            raise  # one of our own modules failed to import: a bug, show it as one
        print(
            f"The awaithumans CLI needs the server extra (missing: {exc.name}).\n"
            '  pip install "awaithumans[server]"',
            file=sys.stderr,
        )
        return 2
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
