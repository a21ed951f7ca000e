"""``awaithumans`` subcommands."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from awaithumans.core import MissingExtraError
from awaithumans.core._discovery import dev_file_path, read_dev_file
from awaithumans.server.cli.audit import add_commands as audit_commands
from awaithumans.server.cli.files import (
    DEV_DIR,
    dev_secrets,
    remove_discovery,
    write_discovery,
)
from awaithumans.server.cli.receipts import add_commands as receipt_commands
from awaithumans.server.cli.receipts import glue_key_values
from awaithumans.server.settings import Settings, describe_error
from awaithumans.server.version import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI

# The server itself (``cli/runner.py``: uvicorn, the app and everything it serves) is
# imported by the commands that run it: the others (doctor, gen-key, the admin commands, a
# refused configuration) start in a fraction of the time.


def _environment() -> Settings:
    """The settings the ``AWAITHUMANS_*`` environment gives; a bad value ends the command."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SystemExit(describe_error(exc)) from None


def _settings(fallbacks: dict[str, object], **explicit: object) -> Settings:
    """Explicit values, then the environment, then ``fallbacks`` (the dev server's files)."""
    env = _environment()
    chosen = {k: v for k, v in fallbacks.items() if k not in env.model_fields_set}
    try:
        return Settings(**chosen, **explicit)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SystemExit(describe_error(exc)) from None


def _print_banner(
    token: str | None, settings: Settings, db_label: str, *, workers: int = 1
) -> None:
    url = settings.base_url()
    print(f"✓ Server running at {url}")
    print(f"✓ Database: {db_label}")
    if workers > 1:
        print(f"✓ Workers: {workers} processes")
    if token:
        print("✓ Open the dashboard at:")
        print()
        print(f"    {url}/setup?token={token}")
        print()
        print("  (one-shot setup link — paste it into your browser)")
    else:
        print(f"✓ Open the dashboard at: {url}")
    sys.stdout.flush()


def _payload_key_problem(settings: Settings) -> str | None:
    """Why the configured payload key is unusable, or None if it is fine (or unset)."""
    from awaithumans.server.security import parse_payload_key

    if settings.payload_key is None:
        return None
    try:
        parse_payload_key(settings.payload_key.get_secret_value())
    except ValueError as exc:
        return str(exc)
    for n, old in enumerate(settings.previous_payload_keys(), start=1):
        try:
            parse_payload_key(old)
        except ValueError as exc:
            return f"AWAITHUMANS_PAYLOAD_KEY_PREVIOUS (key {n}): {exc}"
    return None


def _refuse_bad_key(command: str, settings: Settings) -> bool:
    # create_app would raise the same ValueError, as a traceback; say it as an error instead.
    problem = _payload_key_problem(settings)
    if problem is None:
        return False
    print(
        f"awaithumans {command}: {problem}\n  A new key: awaithumans gen-key",
        file=sys.stderr,
    )
    return True


def cmd_dev(args: argparse.Namespace) -> int:
    from awaithumans.server.cli.runner import first_free_port, port_free, serve

    payload_key, admin_token = dev_secrets(DEV_DIR)
    env = _environment()
    host = args.host or env.host
    if args.port is not None:
        if not port_free(host, args.port):
            print(
                f"Port {args.port} on {host} is taken; pick another with --port.", file=sys.stderr
            )
            return 1
        port = args.port
    else:
        port = first_free_port(host, env.port)
    db_path = DEV_DIR / "dev.db"
    settings = _settings(
        {
            "database_url": f"sqlite+aiosqlite:///./{db_path}",
            "payload_key": payload_key,
            "admin_api_token": admin_token,
            # Relays and resumers run next to the dev server, on this machine.
            "allow_private_callbacks": "loopback",
        },
        host=host,
        port=port,
        dev_mode=True,
    )
    settings = _with_smtp_inbound(settings, args)
    if _refuse_bad_key("dev", settings):
        return 2
    db_label = f"./{db_path}" if settings.is_sqlite else "PostgreSQL (AWAITHUMANS_DATABASE_URL)"
    pid = os.getpid()

    def ready(app: FastAPI) -> None:
        write_discovery(
            {
                "url": settings.base_url(),
                "host": host,
                "port": port,
                "pid": pid,
                "started_at": time.time(),
                # `doctor` run from another folder checks this server's folder, not its own.
                "dev_dir": str(DEV_DIR.resolve()),
                "admin_token": settings.admin_api_token.get_secret_value()
                if settings.admin_api_token
                else None,
            }
        )
        _print_banner(app.state.setup_token, settings, db_label)

    return serve(
        settings,
        on_ready=ready,
        on_exit=lambda: remove_discovery(pid),
        log_level=args.log_level or settings.log_level,
        access_log=args.access_log,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    env = _environment()
    missing = [
        name.upper() for name in ("database_url", "payload_key") if name not in env.model_fields_set
    ]
    if missing:
        print(
            "awaithumans serve needs an explicit configuration; missing: "
            + ", ".join(f"AWAITHUMANS_{m}" for m in missing)
            + ".\n  AWAITHUMANS_DATABASE_URL=postgresql://user:pass@host/db (or sqlite:///path)\n"
            "  AWAITHUMANS_PAYLOAD_KEY=$(awaithumans gen-key)   # keep it safe: it encrypts "
            "payloads\nFor local development use `awaithumans dev` instead.",
            file=sys.stderr,
        )
        return 2
    settings = _with_smtp_inbound(
        _settings({}, host=args.host or env.host, port=args.port or env.port), args
    )
    if _refuse_bad_key("serve", settings):
        return 2
    db_label = "SQLite" if settings.is_sqlite else "PostgreSQL"
    if args.workers > 1:
        problem = _workers_problem(settings)
        if problem is not None:
            print(f"awaithumans serve --workers {args.workers}: {problem}", file=sys.stderr)
            return 2
        from awaithumans.server.cli.workers import serve_workers

        return serve_workers(
            settings,
            args.workers,
            on_ready=lambda token: _print_banner(token, settings, db_label, workers=args.workers),
            log_level=args.log_level or settings.log_level,
            access_log=args.access_log,
        )
    from awaithumans.server.cli.runner import serve

    return serve(
        settings,
        on_ready=lambda app: _print_banner(app.state.setup_token, settings, db_label),
        log_level=args.log_level or settings.log_level,
        access_log=args.access_log,
    )


def _workers_problem(settings: Settings) -> str | None:
    """Why this configuration cannot run several worker processes, or None."""
    if settings.is_sqlite:
        # Each worker wakes only its own long-polls; across processes the wake-up is
        # PostgreSQL's NOTIFY, so on SQLite an answer given to one worker would reach a
        # waiter on another only at its next re-poll (up to 25 s).
        return (
            "several worker processes need PostgreSQL (AWAITHUMANS_DATABASE_URL="
            "postgresql://...): they learn of each other's answers through it. On SQLite run"
            " one process (--workers 1)."
        )
    if settings.email.inbound_smtp_port is not None:
        return (
            "the SMTP receiver of email replies listens in one process only; run it in a"
            " server of its own with --workers 1, or receive replies through the inbound"
            " route (AWAITHUMANS_EMAIL_INBOUND_SECRET)."
        )
    return None


def _with_smtp_inbound(settings: Settings, args: argparse.Namespace) -> Settings:
    """``--smtp-inbound-port`` over ``AWAITHUMANS_EMAIL_INBOUND_SMTP_PORT``."""
    if args.smtp_inbound_port is None:
        return settings
    email = settings.email.model_copy(update={"inbound_smtp_port": args.smtp_inbound_port})
    return settings.model_copy(update={"email": email})


def _settings_for_admin_commands() -> Settings:
    """Settings for one-off commands: the environment, else the dev server's files."""
    env = _environment()
    if "database_url" in env.model_fields_set:
        return env
    if not (DEV_DIR / "dev.db").exists():
        # Making a fresh database here would hand out a key that no running server knows.
        raise SystemExit(
            "No server configuration here: set AWAITHUMANS_DATABASE_URL (and "
            "AWAITHUMANS_PAYLOAD_KEY) for your server, or run this in the directory where "
            "`awaithumans dev` runs."
        )
    payload_key, admin_token = dev_secrets(DEV_DIR)
    return _settings(
        {"payload_key": payload_key, "admin_api_token": admin_token},
        database_url=f"sqlite+aiosqlite:///./{DEV_DIR / 'dev.db'}",
    )


def cmd_create_agent_key(args: argparse.Namespace) -> int:
    from awaithumans.server.db.engine import make_engine, migrate
    from awaithumans.server.services.directory import create_agent_key

    settings = _settings_for_admin_commands()

    async def run() -> None:
        engine = make_engine(settings)
        try:
            await migrate(engine)
            async with engine.begin() as conn:
                made = await create_agent_key(conn, args.name, "cli")
        finally:
            await engine.dispose()
        print(f"✓ Agent key {made.id} ({made.name}) created. It is shown only this once:")
        print()
        print(f"    {made.key}")
        print()
        print("  Give it to the agent as AWAITHUMANS_API_KEY.")

    asyncio.run(run())
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from awaithumans.server.db.engine import make_engine, migrate
    from awaithumans.server.rotation import ColumnResult, rotate
    from awaithumans.server.security import KeyRing, Sealer

    settings = _settings_for_admin_commands()
    problem = _payload_key_problem(settings)
    if settings.payload_key is None or problem is not None:
        print(
            f"awaithumans rotate-key: {problem or 'AWAITHUMANS_PAYLOAD_KEY is not set'}\n"
            "  Run it with the server's environment: the new AWAITHUMANS_PAYLOAD_KEY and the"
            " old one in AWAITHUMANS_PAYLOAD_KEY_PREVIOUS.",
            file=sys.stderr,
        )
        return 2
    ring = KeyRing.from_text(
        settings.payload_key.get_secret_value(), settings.previous_payload_keys()
    )
    print(f"Re-encrypting stored secrets under the current payload key (id {ring.key_id.hex()}):")

    def report(result: ColumnResult) -> None:
        print(f"  {result.label}: {result.resealed} re-encrypted")

    async def run() -> list[ColumnResult]:
        engine = make_engine(settings)
        try:
            await migrate(engine)
            return await rotate(engine, Sealer(ring), batch=args.batch, progress=report)
        finally:
            await engine.dispose()

    results = asyncio.run(run())
    unreadable = sum(r.unreadable for r in results)
    left = sum(r.left for r in results)
    if unreadable:
        print(
            f"✗ {unreadable} value(s) open with none of the configured keys: put the key that"
            " sealed them in AWAITHUMANS_PAYLOAD_KEY_PREVIOUS and run this again.",
            file=sys.stderr,
        )
        return 1
    if left:
        print(
            f"✗ {left} value(s) changed while this ran and are still under an older key;"
            " run this again.",
            file=sys.stderr,
        )
        return 1
    print("✓ Everything stored is now under the current key.")
    if ring.previous:
        print(
            "  Sessions already open and links already sent were signed with the previous key:"
            " keep AWAITHUMANS_PAYLOAD_KEY_PREVIOUS until they expire (sessions: 7 days by"
            " default; handoff links and reply addresses: their task's deadline; one-click"
            " links: 72 h), then remove it and restart the server."
        )
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    from awaithumans.server.cli.backup import backup

    return backup(_settings_for_admin_commands(), Path(args.path))


def cmd_db_restore(args: argparse.Namespace) -> int:
    from awaithumans.server.cli.backup import restore

    return restore(_settings_for_admin_commands(), Path(args.path))


def cmd_gen_key(_args: argparse.Namespace) -> int:
    from awaithumans.server.security import generate_payload_key

    print(generate_payload_key())
    return 0


def cmd_webhook_secret(_args: argparse.Namespace) -> int:
    from awaithumans.server.security import KeyRing
    from awaithumans.server.webhook_secret import webhook_secret

    settings = _settings_for_admin_commands()
    if settings.webhook_secret is not None:
        print(settings.webhook_secret.get_secret_value())
        return 0
    # With AWAITHUMANS_DATABASE_URL set, the key comes only from the environment; it may be
    # missing or malformed, which used to end in an AssertionError or ValueError traceback.
    problem = (
        "AWAITHUMANS_PAYLOAD_KEY is not set"
        if settings.payload_key is None
        else _payload_key_problem(settings)
    )
    if problem is not None or settings.payload_key is None:
        print(
            f"awaithumans webhook-secret: {problem}\n"
            "  The secret is derived from the server's AWAITHUMANS_PAYLOAD_KEY: set the same"
            " key the server uses (or AWAITHUMANS_WEBHOOK_SECRET).",
            file=sys.stderr,
        )
        return 2
    print(webhook_secret(settings, KeyRing.from_text(settings.payload_key.get_secret_value())))
    return 0


def cmd_doctor(_args: argparse.Namespace) -> int:
    from awaithumans.server.cli.doctor import run_doctor

    return run_doctor(DEV_DIR)


def cmd_relay_temporal(args: argparse.Namespace) -> int:
    """Run the webhook-to-signal relay for Temporal workflows until SIGINT/SIGTERM."""
    try:
        from awaithumans.adapters.temporal import relay_app
    except MissingExtraError as exc:
        print(f"awaithumans relay temporal: {exc.message}", file=sys.stderr)
        return 2
    from temporalio.client import Client

    secret = _relay_secret("temporal", args)
    if secret is None:
        return 2

    async def connect() -> Client:
        # Connected lazily on uvicorn's loop: the client's futures belong to that loop.
        return await Client.connect(args.temporal_address, namespace=args.namespace)

    where = f"Temporal {args.temporal_address} (namespace {args.namespace})"
    return _serve_relay(relay_app(connect, secret), args, where)


def cmd_relay_prefect(args: argparse.Namespace) -> int:
    """Run the webhook-to-resume relay for Prefect flow runs until SIGINT/SIGTERM."""
    try:
        from awaithumans.adapters.prefect import relay_app
    except MissingExtraError as exc:
        print(f"awaithumans relay prefect: {exc.message}", file=sys.stderr)
        return 2
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    secret = _relay_secret("prefect", args)
    if secret is None:
        return 2
    api_url = PREFECT_API_URL.value()
    if not api_url:
        # Without it Prefect's client would start a throwaway in-process server, whose runs
        # are not the ones paused elsewhere.
        print(
            "awaithumans relay prefect: PREFECT_API_URL is not set;"
            " point it at your Prefect server, e.g. http://127.0.0.1:4200/api",
            file=sys.stderr,
        )
        return 2
    return _serve_relay(relay_app(get_client, secret), args, f"Prefect {api_url}")


_SECRET_ENV = "AWAITHUMANS_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a secret


def _relay_secret(engine: str, args: argparse.Namespace) -> str | None:
    """The webhook secret a relay verifies with, or None after saying what is missing."""
    name = args.webhook_secret_env
    if name == _SECRET_ENV:
        found = _environment().webhook_secret
        secret = found.get_secret_value() if found else None
    else:
        # A variable named on the command line: the user's own, not one of our settings.
        secret = os.environ.get(name)
    if not secret:
        print(
            f"awaithumans relay {engine}: ${name} is empty;"
            " set it to the output of `awaithumans webhook-secret`.",
            file=sys.stderr,
        )
        return None
    return secret


def _serve_relay(app: Any, args: argparse.Namespace, where: str) -> int:
    import uvicorn

    env = _environment()
    host = args.host or env.host
    print(f"✓ Relaying webhooks on http://{host}:{args.port} to {where}", flush=True)
    log_level = args.log_level or env.log_level
    uvicorn.run(app, host=host, port=args.port, log_level=log_level, access_log=args.access_log)
    return 0


def cmd_slack_manifest(args: argparse.Namespace) -> int:
    """Print the Slack app manifest with this server's request URLs filled in."""
    from awaithumans.server.notify.slack.manifest import manifest

    url = args.url or _environment().public_url
    if not url:
        print(
            "awaithumans slack manifest: give the server's public address with --url"
            " (or set AWAITHUMANS_PUBLIC_URL), e.g. --url https://approvals.acme.com",
            file=sys.stderr,
        )
        return 2
    if not url.startswith("https://") and not args.socket_mode:
        print(
            "awaithumans slack manifest: Slack sends requests only to https URLs; use a"
            " tunnel's https address, or --socket-mode (no public URL needed).",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(manifest(url, name=args.name, socket_mode=args.socket_mode), indent=2))
    # The next steps go to stderr, so stdout stays the manifest alone (pipe it to a file).
    tokens = "AWAITHUMANS_SLACK_BOT_TOKEN=xoxb-..."
    if args.socket_mode:
        tokens += " AWAITHUMANS_SLACK_APP_TOKEN=xapp-... (Basic Information → App-Level"
        tokens += " Tokens, scope connections:write)"
    else:
        tokens += " AWAITHUMANS_SLACK_SIGNING_SECRET=... (Basic Information)"
    print(
        "Paste it at https://api.slack.com/apps → Create New App → From a manifest, install"
        f" the app, then export {tokens}.",
        file=sys.stderr,
    )
    return 0


def cmd_version(_args: argparse.Namespace) -> int:
    print(f"awaithumans {__version__}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="awaithumans",
        description="Human-in-the-loop task server for AI agents.",
        epilog="Start with `awaithumans dev`; `awaithumans COMMAND --help` says more.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def server_flags(p: argparse.ArgumentParser, port_default: int | None, port_help: str) -> None:
        # None: AWAITHUMANS_HOST / AWAITHUMANS_PORT, else the settings' defaults.
        p.add_argument(
            "--host",
            default=None,
            help="address to listen on (default: AWAITHUMANS_HOST, else 127.0.0.1)",
        )
        p.add_argument("--port", type=int, default=port_default, help=port_help)
        p.add_argument(
            "--log-level",
            default=None,
            choices=["debug", "info", "warning", "error"],
            help="how much the server logs (default: AWAITHUMANS_LOG_LEVEL, else warning)",
        )
        p.add_argument("--access-log", action="store_true", help="log every request")

    def smtp_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--smtp-inbound-port",
            type=int,
            default=None,
            metavar="PORT",
            help="receive email replies over SMTP here (AWAITHUMANS_EMAIL_INBOUND_SMTP_PORT)",
        )

    dev = sub.add_parser("dev", help="run a local server with zero configuration")
    server_flags(dev, None, "port (default: AWAITHUMANS_PORT, else 3001 or the next free one)")
    smtp_flag(dev)
    dev.set_defaults(func=cmd_dev)

    prod = sub.add_parser("serve", help="run the server from AWAITHUMANS_* configuration")
    server_flags(prod, None, "port (default: AWAITHUMANS_PORT, else 3001)")
    smtp_flag(prod)
    prod.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="server processes answering on the port; more than 1 needs PostgreSQL (default: 1)",
    )
    prod.set_defaults(func=cmd_serve)

    key = sub.add_parser("create-agent-key", help="create a scoped API key for an agent")
    key.add_argument("--name", required=True, help="who will use it, e.g. refund-bot")
    key.set_defaults(func=cmd_create_agent_key)

    sub.add_parser("doctor", help="check the configuration and say what to fix").set_defaults(
        func=cmd_doctor
    )
    sub.add_parser("gen-key", help="print a new AWAITHUMANS_PAYLOAD_KEY").set_defaults(
        func=cmd_gen_key
    )
    rotate = sub.add_parser(
        "rotate-key",
        help="re-encrypt stored secrets under the current AWAITHUMANS_PAYLOAD_KEY"
        " (the old key in AWAITHUMANS_PAYLOAD_KEY_PREVIOUS); safe to run again",
    )
    rotate.add_argument("--batch", type=int, default=500, help="rows read per query (default: 500)")
    rotate.set_defaults(func=cmd_rotate_key)

    db = sub.add_parser("db", help="back up or restore the SQLite database")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_backup = db_commands.add_parser(
        "backup", help="copy the database to PATH, safely while the server runs"
    )
    db_backup.add_argument("path", metavar="PATH", help="the new backup file (must not exist)")
    db_backup.set_defaults(func=cmd_db_backup)
    db_restore = db_commands.add_parser(
        "restore", help="replace the database's content with a backup (stop the server first)"
    )
    db_restore.add_argument("path", metavar="PATH", help="a file made by `awaithumans db backup`")
    db_restore.set_defaults(func=cmd_db_restore)
    sub.add_parser(
        "webhook-secret", help="print the secret webhook receivers verify signatures with"
    ).set_defaults(func=cmd_webhook_secret)
    receipt_commands(sub, _settings_for_admin_commands)
    audit_commands(sub, _settings_for_admin_commands)
    sub.add_parser("version", help="print the version").set_defaults(func=cmd_version)
    sub.add_parser(
        "url", help="print the running dev server's URL (from ~/.awaithumans-dev.json)"
    ).set_defaults(func=cmd_url)
    sub.add_parser(
        "token", help="print the running dev server's admin token (for curl)"
    ).set_defaults(func=cmd_token)

    slack = sub.add_parser("slack", help="set up the Slack app")
    slack_commands = slack.add_subparsers(dest="slack_command", required=True, metavar="COMMAND")
    manifest = slack_commands.add_parser(
        "manifest", help="print the app manifest to paste into api.slack.com (From manifest)"
    )
    manifest.add_argument("--url", help="the server's public https address")
    manifest.add_argument(
        "--name", default="Await Humans", help="the app's name in Slack (default: Await Humans)"
    )
    manifest.add_argument(
        "--socket-mode",
        action="store_true",
        help="receive Slack over Socket Mode (set AWAITHUMANS_SLACK_APP_TOKEN): no request URLs",
    )
    manifest.set_defaults(func=cmd_slack_manifest)

    relay = sub.add_parser("relay", help="turn task webhooks into workflow-engine events")
    engines = relay.add_subparsers(dest="engine", required=True, metavar="ENGINE")
    temporal = engines.add_parser(
        "temporal", help="signal Temporal workflows (awaithumans.task_event)"
    )
    temporal.add_argument(
        "--temporal-address",
        default="localhost:7233",
        metavar="HOST:PORT",
        help="the Temporal frontend (default: localhost:7233)",
    )
    temporal.add_argument(
        "--namespace", default="default", help="Temporal namespace (default: default)"
    )
    temporal.add_argument(
        "--webhook-secret-env",
        default=_SECRET_ENV,
        metavar="NAME",
        help=f"environment variable holding the webhook secret (default: {_SECRET_ENV})",
    )
    server_flags(temporal, 3002, "port the relay listens on (default: 3002)")
    temporal.set_defaults(func=cmd_relay_temporal)

    prefect = engines.add_parser(
        "prefect", help="resume paused or suspended Prefect flow runs (PREFECT_API_URL)"
    )
    prefect.add_argument(
        "--webhook-secret-env",
        default=_SECRET_ENV,
        metavar="NAME",
        help=f"environment variable holding the webhook secret (default: {_SECRET_ENV})",
    )
    server_flags(prefect, 3003, "port the relay listens on (default: 3003)")
    prefect.set_defaults(func=cmd_relay_prefect)
    # `awaithumans mcp` parses its own flags (awaithumans/integrations/mcp): see run().
    sub.add_parser(
        "mcp", help="serve ask_human/get_answer to MCP clients (stdio, or --transport http)"
    )
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand's own --help the one line the command list shows for it.

    argparse keeps that line only in the list (``help=``); ``description`` is separate.
    Walks its subparser actions (stable for a decade, if not public)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                child = action.choices[listed.dest]
                if child.description is None and listed.help:
                    child.description = listed.help[0].upper() + listed.help[1:] + "."
                _describe(child)


def run(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["mcp"]:
        # Its flags and the `mcp` SDK are loaded only when it runs (the console script
        # hands it over before importing this module: awaithumans/_cli_entry.py).
        from awaithumans.integrations.mcp_command import run as run_mcp

        return run_mcp(argv[1:])
    parser = build_parser()
    args = parser.parse_args(glue_key_values(argv))
    if args.command is None:
        # Bare `awaithumans`: say what there is to run.
        parser.print_help()
        return 0
    result: int = args.func(args)
    return result


def _dev_value(key: str, what: str) -> int:
    """Print one value of the running dev server's discovery file."""
    found = read_dev_file()
    value = found.get(key) if found else None
    if not isinstance(value, str):
        print(
            f"No running `awaithumans dev` found ({dev_file_path()}); start one, or use "
            f"the {what} your server printed.",
            file=sys.stderr,
        )
        return 1
    print(value)
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    return _dev_value("url", "URL")


def cmd_token(args: argparse.Namespace) -> int:
    return _dev_value("admin_token", "admin token")
