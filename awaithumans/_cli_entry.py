"""The ``awaithumans`` console script. The CLI lives in the server extra; say so if absent."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        print(
            f"The awaithumans CLI needs the server extra (missing: {exc.name}).\n"
            '  pip install "awaithumans[server]"',
            file=sys.stderr,
        )
        return 2
    from awaithumans.server.cli.main import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
