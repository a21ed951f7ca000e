"""``awaithumans doctor``: check the configuration and say what to fix."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from pydantic import ValidationError

from awaithumans.core._discovery import dev_file_path, read_dev_file
from awaithumans.server.services.verifier_gate import provider_statuses
from awaithumans.server.settings import Settings, describe_error


class Report:
    def __init__(self) -> None:
        self.problems = 0

    def ok(self, text: str) -> None:
        print(f"✓ {text}")

    def bad(self, text: str, fix: str) -> None:
        self.problems += 1
        print(f"✗ {text}\n    fix: {fix}")

    def note(self, text: str) -> None:
        print(f"· {text}")


def _check_key(report: Report, env: Settings, dev_dir: Path) -> None:
    from awaithumans.server.security import parse_payload_key

    key = env.payload_key.get_secret_value() if env.payload_key else None
    source = "AWAITHUMANS_PAYLOAD_KEY"
    if not key and (dev_dir / "payload.key").exists():
        key, source = (dev_dir / "payload.key").read_text().strip(), str(dev_dir / "payload.key")
    if not key:
        report.bad(
            "No payload key: AWAITHUMANS_PAYLOAD_KEY is unset and there is no dev key.",
            "export AWAITHUMANS_PAYLOAD_KEY=$(awaithumans gen-key), or run `awaithumans dev`.",
        )
        return
    try:
        parse_payload_key(key)
    except ValueError as exc:
        report.bad(f"The payload key from {source} is malformed: {exc}", "awaithumans gen-key")
        return
    report.ok(f"Payload key found ({source}).")
    if (dev_dir / "payload.key").exists() and (dev_dir / "payload.key").stat().st_mode & 0o077:
        report.bad(
            f"{dev_dir / 'payload.key'} is readable by others.", f"chmod 600 {dev_dir}/payload.key"
        )


async def _check_db(report: Report, settings: Settings) -> None:
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from awaithumans.server.db.engine import MIGRATIONS_DIR, current_revision, make_engine

    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        report.ok(f"Database reachable ({engine.dialect.name}).")
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        current = await current_revision(engine)
        if current == head:
            report.ok(f"Schema is current (revision {head}).")
        else:
            report.note(
                f"Schema at {current or 'nothing'}; the server migrates to {head} at start."
            )
    except Exception as exc:
        report.bad(
            f"Cannot reach the database at {settings.database_url.split('@')[-1]}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "check AWAITHUMANS_DATABASE_URL, and that the database server is running.",
        )
    finally:
        await engine.dispose()


def _running_dev_dir(dev: dict[str, object] | None, here: Path) -> Path | None:
    """The running dev server's folder when ``doctor`` runs outside it, else None.

    ``awaithumans dev`` keeps its key and database in ``./.awaithumans`` of the folder it was
    started in. Run from anywhere else (another terminal's home folder, say), ``doctor``
    would report a missing key for a server that is fine; the discovery file names the
    folder, so the check follows it. A folder with its own ``.awaithumans`` is checked as is.
    """
    if dev is None or here.is_dir():
        return None
    named = dev.get("dev_dir")
    if not isinstance(named, str) or not Path(named).is_dir():
        return None
    return Path(named)


def _check_running_server(report: Report, dev: dict[str, object]) -> None:
    url = dev.get("url")
    try:
        reply = httpx.get(f"{url}/api/health", timeout=3.0)
        healthy = reply.status_code == 200
    except httpx.HTTPError as exc:
        report.bad(
            f"The dev server at {url} (pid {dev.get('pid')}) does not answer: {exc}.",
            "stop it (Ctrl-C in its terminal) and start `awaithumans dev` again.",
        )
        return
    if healthy:
        report.ok(f"A dev server is running at {url} (pid {dev.get('pid')}) and answers.")
    else:
        report.bad(
            f"The dev server at {url} answers {reply.status_code} to /api/health.",
            "read its terminal's log; restart it if its database is gone.",
        )


def run_doctor(dev_dir: Path) -> int:
    report = Report()
    try:
        env = Settings()
    except ValidationError as exc:
        report.bad(describe_error(exc), "see awaithumans serve --help")
        return 1
    dev = read_dev_file()
    elsewhere = _running_dev_dir(dev, dev_dir)
    if elsewhere is not None:
        report.note(f"No {dev_dir} here; checking the running dev server's folder {elsewhere}.")
        dev_dir = elsewhere
    _check_key(report, env, dev_dir)
    # Where `awaithumans dev` keeps its database unless the environment names one
    # (``sqlite:///`` + a relative path is relative, + an absolute one is absolute).
    settings = (
        env
        if "database_url" in env.model_fields_set
        else Settings(database_url=f"sqlite:///{dev_dir / 'dev.db'}")
    )
    sqlite_file = settings.sqlite_path()
    if sqlite_file is not None and not sqlite_file.exists():
        # Connecting would create the file (and its folder, 0755 instead of the dev server's
        # 0700): a check must not change what it checks.
        report.note(f"No database at {sqlite_file} yet; the server creates it at start.")
    else:
        asyncio.run(_check_db(report, settings))
        _check_private(report, sqlite_file)
    if settings.public_url and not settings.public_url.startswith("https://"):
        report.note("AWAITHUMANS_PUBLIC_URL is not https: session cookies will not be Secure.")
    if dev is not None:
        _check_running_server(report, dev)
    elif dev_file_path().exists():
        report.note(f"{dev_file_path()} is stale (its server is gone); the SDK ignores it.")
    else:
        report.note("No dev server running; the SDK will use AWAITHUMANS_URL or localhost:3001.")
    for status in provider_statuses():
        info = status.info
        if status.usable:
            report.ok(f"Verifier {info.label}: ready ({status.key_env} set).")
        elif status.sdk_installed:
            report.note(f"Verifier {info.label}: installed; export {status.key_env} to use it.")
        else:
            report.note(
                f'Verifier {info.label}: pip install "awaithumans[{info.extra}]" to use it.'
            )
    _check_channels(report, settings)
    print()
    print("All good." if report.problems == 0 else f"{report.problems} problem(s) to fix.")
    return 0 if report.problems == 0 else 1


def _check_private(report: Report, database: Path | None) -> None:
    """The SQLite files hold password and key hashes and sessions: the server creates them
    0600 in a 0700 folder, but never chmods a file or folder that was there before it."""
    from awaithumans.server.security.private_files import open_to_others, sqlite_files

    if database is None:
        return
    for path in sqlite_files(database):
        if open_to_others(path):
            report.bad(f"{path} is readable by other users.", f"chmod 600 {path}")
    if open_to_others(database.parent.resolve()):
        report.note(
            f"Other users can open {database.parent.resolve()} (the database's folder); "
            f"chmod 700 it unless that is on purpose."
        )


def _check_slack_tokens(report: Report, settings: Settings) -> None:
    """Tokens pasted into the wrong variable are the most common Slack setup mistake."""
    slack = settings.slack
    tokens = (("BOT_TOKEN", slack.bot_token, "xoxb-"), ("APP_TOKEN", slack.app_token, "xapp-"))
    for name, value, prefix in tokens:
        if value is not None and not value.get_secret_value().startswith(prefix):
            report.bad(
                f"AWAITHUMANS_SLACK_{name} does not start with {prefix}.",
                "the bot token (xoxb-) is under OAuth & Permissions, the app-level token"
                " (xapp-, scope connections:write) under Basic Information.",
            )
    if slack.app_token is not None and not slack.configured:
        report.bad(
            "AWAITHUMANS_SLACK_APP_TOKEN is set, but no bot token (or OAuth app) to post with.",
            "export AWAITHUMANS_SLACK_BOT_TOKEN=xoxb-... from OAuth & Permissions.",
        )
    if not slack.configured:
        return
    mode = "OAuth (several workspaces)" if slack.client_id is not None else "static token"
    receives = "Socket Mode" if slack.app_token is not None else "request URLs"
    report.ok(f"Slack: {mode}; Slack's clicks and replies arrive over {receives}.")


def _check_channels(report: Report, settings: Settings) -> None:
    slack, email = settings.slack, settings.email
    _check_slack_tokens(report, settings)
    # Socket Mode carries Slack's requests over the app's own websocket: nothing to sign.
    if slack.configured and slack.signing_secret is None and slack.app_token is None:
        set_one = "BOT_TOKEN" if slack.bot_token is not None else "CLIENT_ID"
        report.bad(
            f"AWAITHUMANS_SLACK_{set_one} is set but AWAITHUMANS_SLACK_SIGNING_SECRET is not.",
            "copy the Signing Secret from your Slack app's Basic Information page"
            " (or use Socket Mode: export AWAITHUMANS_SLACK_APP_TOKEN=xapp-...).",
        )
    if slack.client_id is not None and (slack.client_secret is None or not slack.install_token):
        report.bad(
            "Slack OAuth needs AWAITHUMANS_SLACK_CLIENT_SECRET and AWAITHUMANS_SLACK_INSTALL_TOKEN"
            " next to AWAITHUMANS_SLACK_CLIENT_ID.",
            "copy the client secret from your Slack app; pick any long random install token.",
        )
    if not email.configured:
        return
    # The dev transports print or file the mail: any sender will do there.
    problems = []
    if email.from_address is None and email.transport in ("smtp", "resend"):
        problems.append(
            (
                "AWAITHUMANS_EMAIL_TRANSPORT is set but AWAITHUMANS_EMAIL_FROM is not.",
                "export AWAITHUMANS_EMAIL_FROM=approvals@your-domain",
            )
        )
    if email.transport == "smtp" and email.smtp.host is None:
        problems.append(
            (
                "The smtp email transport needs AWAITHUMANS_SMTP_HOST.",
                "export AWAITHUMANS_SMTP_HOST=smtp.your-provider.com (and _PORT, _USERNAME, ...)",
            )
        )
    if email.transport == "resend" and email.resend_api_key is None:
        problems.append(
            (
                "The resend email transport needs AWAITHUMANS_RESEND_API_KEY.",
                "create an API key in Resend and export it as AWAITHUMANS_RESEND_API_KEY.",
            )
        )
    if email.reply_domain and email.inbound_secret is None and email.inbound_smtp_port is None:
        problems.append(
            (
                "AWAITHUMANS_EMAIL_REPLY_DOMAIN is set, but replies have no way in.",
                "set AWAITHUMANS_EMAIL_INBOUND_SECRET (POST /api/channels/email/inbound) or"
                " AWAITHUMANS_EMAIL_INBOUND_SMTP_PORT (the built-in SMTP receiver).",
            )
        )
    for problem, fix in problems:
        report.bad(problem, fix)
    if not problems:
        report.ok(f"Email: {email.summary}.")
