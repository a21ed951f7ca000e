"""``awaithumans audit export`` / ``audit verify``: the commands' flags.

The work (reading the chains from the database, checking them) is in ``audit_trail.py``,
imported when one of these commands runs: every other command starts without SQLAlchemy
and the table models.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from awaithumans.server.settings import Settings

SettingsSource = Callable[[], Settings]


def cmd_export(args: argparse.Namespace, settings: SettingsSource) -> int:
    from awaithumans.server.cli import audit_trail

    return audit_trail.cmd_export(args, settings)


def cmd_verify(args: argparse.Namespace, settings: SettingsSource) -> int:
    from awaithumans.server.cli import audit_trail

    return audit_trail.cmd_verify(args, settings)


def add_commands(sub: Any, settings: SettingsSource) -> None:
    """Register ``audit export`` and ``audit verify`` (``settings``: the admin commands')."""
    audit = sub.add_parser(
        "audit", help="export the hash-chained audit trail, or check that it is intact"
    )
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    export = commands.add_parser(
        "export", help="write every audit row with its chain hash, ordered by task then row"
    )
    export.add_argument(
        "--format",
        choices=["jsonl", "csv"],
        default="jsonl",
        help="one JSON object per line, or CSV with a header (default: jsonl)",
    )
    export.add_argument("--task", metavar="ID", help="only this task's rows")
    export.add_argument(
        "--output", metavar="FILE", help="a new file to write (created 0600); else stdout"
    )
    export.set_defaults(func=lambda args: cmd_export(args, settings))
    verify = commands.add_parser(
        "verify", help="check every task's chain; exit 1 naming each first row that breaks it"
    )
    verify.add_argument("--task", metavar="ID", help="only this task")
    verify.add_argument(
        "--input",
        metavar="FILE",
        help="check an export (jsonl) instead of the database; rows deleted at its end"
        " are not seen without the database's task heads",
    )
    verify.set_defaults(func=lambda args: cmd_verify(args, settings))
