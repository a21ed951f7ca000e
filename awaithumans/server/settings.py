"""Server settings: explicit argument, then ``AWAITHUMANS_*`` environment, then default."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from awaithumans.server.services.business_hours import parse_business_hours

DEFAULT_PORT = 3001


class SlackSettings(BaseSettings):
    """The Slack channel: ``AWAITHUMANS_SLACK_*``.

    Static-token mode needs ``bot_token`` and ``signing_secret``; OAuth (several
    workspaces) needs ``client_id``, ``client_secret``, ``signing_secret`` and
    ``install_token``; ``app_token`` turns on Socket Mode (no public URL needed).
    """

    model_config = SettingsConfigDict(env_prefix="AWAITHUMANS_SLACK_", extra="ignore")

    bot_token: SecretStr | None = Field(default=None, description="xoxb-... (static token).")
    signing_secret: SecretStr | None = Field(
        default=None, description="Verifies every request Slack sends."
    )
    client_id: str | None = Field(default=None, description="OAuth app client id.")
    client_secret: SecretStr | None = Field(default=None, description="OAuth client secret.")
    install_token: SecretStr | None = Field(
        default=None, description="Operator secret that opens the OAuth install link."
    )
    app_token: SecretStr | None = Field(default=None, description="xapp-... (Socket Mode).")
    api_url: str | None = Field(
        default=None, description="Slack's Web API base URL (proxies, test stand-ins)."
    )

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `export AWAITHUMANS_SLACK_BOT_TOKEN=` means "no token", not an empty one.
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def configured(self) -> bool:
        """Whether any way to reach Slack is set up."""
        return self.bot_token is not None or self.client_id is not None


class SmtpSettings(BaseSettings):
    """The SMTP transport of the email channel: ``AWAITHUMANS_SMTP_*``."""

    model_config = SettingsConfigDict(env_prefix="AWAITHUMANS_SMTP_", extra="ignore")

    host: str | None = Field(
        default=None, description="The SMTP relay's host name; required by the smtp transport."
    )
    port: int = Field(
        default=587,
        ge=1,
        le=65535,
        description="The relay's port: 587 for STARTTLS, 465 for implicit TLS (USE_TLS).",
    )
    username: str | None = Field(
        default=None, description="SMTP AUTH user name; unset: no authentication."
    )
    password: SecretStr | None = Field(default=None, description="SMTP AUTH password.")
    start_tls: bool = Field(default=True, description="Upgrade the connection with STARTTLS.")
    use_tls: bool = Field(default=False, description="Implicit TLS from the first byte (465).")


EmailTransport = Literal["smtp", "resend", "logging", "file"]


class EmailSettings(BaseSettings):
    """The email channel: ``AWAITHUMANS_EMAIL_*``, the SMTP transport, Resend's key."""

    model_config = SettingsConfigDict(
        env_prefix="AWAITHUMANS_EMAIL_", extra="ignore", populate_by_name=True
    )

    transport: EmailTransport | None = Field(
        default=None, description="smtp | resend | logging | file; unset: no email."
    )
    from_address: str | None = Field(
        default=None,
        # The alias is the whole variable name (no prefix is added to it); the field's own
        # name still works in code, through populate_by_name.
        validation_alias="AWAITHUMANS_EMAIL_FROM",
        description="The sender, e.g. approvals@acme.com.",
    )
    from_name: str | None = Field(
        default=None, description="Display name shown with the From address."
    )
    reply_to: str | None = Field(
        default=None,
        description="Reply-To of the server's mails, except those whose replies it reads"
        " (they carry a signed reply+TOKEN@ address).",
    )
    resend_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="AWAITHUMANS_RESEND_API_KEY",
        description="Resend API key (re_...); required by the resend transport.",
    )
    file_dir: Path = Field(
        default=Path(".awaithumans/mail"),
        description="Where the file transport writes each message as an .eml file.",
    )
    link_ttl_hours: float = Field(
        default=72, gt=0, description="One-click answer links expire after this (or the deadline)."
    )
    reply_domain: str | None = Field(
        default=None, description="Domain of the signed reply+TOKEN@ addresses (reply by email)."
    )
    inbound_secret: SecretStr | None = Field(
        default=None, description="Shared secret of POST /api/channels/email/inbound."
    )
    inbound_smtp_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port of the built-in SMTP receiver of replies."
    )
    inbound_smtp_host: str | None = Field(
        default=None, description="Address it listens on (default: the server's host)."
    )
    notify_outcome: bool = Field(
        default=False, description="Mail each recipient how the task ended (off: no mail storms)."
    )
    send_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest one SMTP send may take before it counts as a temporary failure"
        " (retried later).",
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `export AWAITHUMANS_EMAIL_TRANSPORT=` means "no email", not an invalid transport.
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def configured(self) -> bool:
        return self.transport is not None

    @property
    def summary(self) -> str:
        """Where mail goes, in a phrase (doctor, Settings → Email)."""
        if self.transport == "smtp":
            smtp = self.smtp
            tls = "implicit TLS" if smtp.use_tls else "STARTTLS" if smtp.start_tls else "no TLS"
            return f"SMTP through {smtp.host}:{smtp.port} ({tls}), from {self.sender}"
        if self.transport == "resend":
            return f"Resend's API, from {self.sender}"
        if self.transport == "file":
            return f"written as .eml files to {self.file_dir}/ (nothing is sent)"
        if self.transport == "logging":
            return "printed on the server's terminal (nothing is sent)"
        return "not configured: set AWAITHUMANS_EMAIL_TRANSPORT (smtp, resend, logging, file)"

    @property
    def sender(self) -> str:
        """The From address: the configured one, or a local one that says it is unset."""
        return self.from_address or "awaithumans@localhost"


class VerifierSettings(BaseSettings):
    """Server-side verifiers: ``AWAITHUMANS_VERIFIER_*`` (and the Gemini base URL).

    The provider keys themselves are read from the variables the task's verifier config
    names (``ANTHROPIC_API_KEY`` ...), which must be one of the providers' usual names or
    listed in ``key_envs``: an agent must not be able to make the server read any secret it
    likes.
    """

    model_config = SettingsConfigDict(
        env_prefix="AWAITHUMANS_VERIFIER_", extra="ignore", populate_by_name=True
    )

    timeout_seconds: float = Field(default=60.0, gt=0, le=600, description="Per model call.")
    concurrency: int = Field(default=8, ge=1, le=256, description="Model calls at once.")
    retry_max_seconds: float = Field(
        default=60.0, ge=1, description="Longest wait between tries while a provider is down."
    )
    key_envs: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More variable names verifier configs may name (comma-separated).",
    )
    gemini_base_url: str | None = Field(
        default=None,
        validation_alias="AWAITHUMANS_GEMINI_BASE_URL",
        description="Gemini API base URL (proxies, test stand-ins).",
    )

    @field_validator("key_envs", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("key_envs")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not _ENV_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"not environment variable names: {', '.join(bad)}")
        return value

    @property
    def allowed_key_envs(self) -> frozenset[str]:
        """The variables a verifier config may name for its key or endpoint."""
        return DEFAULT_VERIFIER_KEY_ENVS | frozenset(self.key_envs)


#: The providers' usual variable names: the only ones a verifier config may name, unless
#: ``AWAITHUMANS_VERIFIER_KEY_ENVS`` adds more.
DEFAULT_VERIFIER_KEY_ENVS = frozenset(
    {
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
    }
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Which non-public addresses a ``callback_url`` may reach (``security/outbound.py``):
#: ``none``, ``loopback`` (this machine) or ``all`` (any private network).
AllowPrivateCallbacks = Literal["none", "loopback", "all"]
_YES = frozenset({"1", "true", "yes", "on", "all"})
_NO = frozenset({"", "0", "false", "no", "off", "none"})


def _rate(value: object) -> object:
    """``"20/600"`` (a count, a slash, seconds) as ``(20, 600.0)``."""
    if isinstance(value, str):
        count, slash, seconds = value.partition("/")
        try:
            parsed = (int(count), float(seconds))
        except ValueError:
            parsed = (0, 0.0)
        if not slash or parsed[0] < 1 or not 0 < parsed[1] < float("inf"):
            raise ValueError(f"{value!r} is not COUNT/SECONDS, e.g. 20/600")
        return parsed
    return value


#: A rate limit: at most COUNT in SECONDS (``AWAITHUMANS_SETUP_LIMIT_PER_ADDRESS=20/600``).
#: Counted as a leaky bucket: after a burst of COUNT, one more every SECONDS/COUNT.
RateLimit = Annotated[
    tuple[Annotated[int, Field(ge=1)], Annotated[float, Field(gt=0, allow_inf_nan=False)]],
    NoDecode,
    BeforeValidator(_rate),
]


class Settings(BaseSettings):
    """Everything the server reads from its environment.

    Build one explicitly in code (``Settings(database_url=...)``) or let the environment fill
    it (``AWAITHUMANS_DATABASE_URL`` and friends). ``create_app`` never reads the environment
    by itself.
    """

    model_config = SettingsConfigDict(
        env_prefix="AWAITHUMANS_", extra="ignore", validate_default=True
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///./.awaithumans/dev.db",
        description="Where everything is stored: postgresql://user:password@host/db (needed for"
        " several processes) or sqlite:///path (one process); the async driver"
        " (+asyncpg, +aiosqlite) is added when missing. Required by `awaithumans serve`.",
    )
    payload_key: SecretStr | None = Field(
        default=None,
        description="32-byte root secret (base64url or hex; `awaithumans gen-key` prints one)."
        " It encrypts payloads and answers at rest and derives every signing key: keep it"
        " as long as the data and its backups. Required by `awaithumans serve`.",
    )
    payload_key_previous: SecretStr | None = Field(
        default=None,
        description="While rotating: the payload key(s) AWAITHUMANS_PAYLOAD_KEY replaced,"
        " comma-separated, newest first. What they sealed still opens and what they signed"
        " (sessions, links in mails) still verifies; `awaithumans rotate-key` re-encrypts.",
    )
    admin_api_token: SecretStr | None = Field(
        default=None, description="Bearer token with operator rights (dev and automation)."
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL humans use to reach the server (links in messages, Review at);"
        " https:// makes cookies Secure.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address the server listens on (--host wins); 0.0.0.0 for every"
        " interface, as in a container behind a proxy.",
    )
    port: int = Field(default=DEFAULT_PORT, description="Port it listens on (--port wins).")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body; a bigger one is refused before it is read"
        " (413 PAYLOAD_TOO_LARGE).",
    )
    session_ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, description="How long a dashboard sign-in lasts."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Standard Webhooks secret (whsec_...); unset: derived from"
        " AWAITHUMANS_PAYLOAD_KEY (`awaithumans webhook-secret` prints it).",
    )
    webhook_max_attempts: int = Field(
        default=12,
        ge=1,
        le=100,
        description="Attempts per delivery before it fails for good: webhooks, Temporal"
        " signals, Prefect resumes and Slack messages (email and verification have policies"
        " of their own).",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest one webhook request may take."
    )
    allow_private_callbacks: AllowPrivateCallbacks = Field(
        default="none",
        description="Let callback_url reach non-public addresses: loopback (this machine;"
        " `awaithumans dev` sets it) or true (any private network too). Cloud metadata,"
        " unspecified and multicast addresses stay refused.",
    )
    outbox_poll_seconds: float = Field(
        default=5.0, gt=0, description="Safety-net scan for due outbox rows (normally woken)."
    )
    outbox_lease_seconds: float = Field(
        default=15.0,
        ge=1,
        le=600,
        description="How long a process holds a delivery it took before renewing its lease"
        " (every third of it, while the delivery runs): a process that dies frees its"
        " deliveries for the others this soon.",
    )
    scheduler_max_sleep_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest the timeout scheduler sleeps before it looks at the deadlines"
        " and due reminders and escalations again (a new earlier one wakes it in its own"
        " process): how late one set through a replica that has since gone is caught by the"
        " others.",
    )
    business_hours: str | None = Field(
        default=None,
        description="When reminders and escalations count time, e.g. 'Mon-Fri 09:00-17:00"
        " Europe/Berlin' (days, HH:MM-HH:MM windows, an IANA zone; clauses joined by ';'):"
        " a 4 h reminder on a task created Friday 16:00 lands Monday 12:00. Unset: every"
        " hour counts. Task timeouts never wait for business hours.",
    )
    temporal_address: str | None = Field(
        default=None,
        description="host:port of Temporal; set to signal waiting workflows without a relay.",
    )
    temporal_namespace: str = Field(
        default="default", description="Temporal namespace of the waiting workflows."
    )
    prefect_api_url: str | None = Field(
        default=None,
        description="Prefect's API (http://host:4200/api); set to resume waiting flow runs"
        " without a relay.",
    )
    prefect_api_key: SecretStr | None = Field(
        default=None, description="Prefect Cloud API key, with AWAITHUMANS_PREFECT_API_URL."
    )
    slack: SlackSettings = Field(default_factory=SlackSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    verifier: VerifierSettings = Field(default_factory=VerifierSettings)
    dev_mode: bool = Field(
        default=False,
        description="Set by `awaithumans dev`: the dashboard's Settings page marks the server"
        " as a development one. Changes nothing else.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="warning",
        description="How much `serve`, `dev` and the relays log (their --log-level flag wins).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: lines for people (uvicorn's format); json: one JSON object per"
        " line on stdout (time, level, logger, message, and request_id, task_id, trace_id"
        " when known).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that may read GET /metrics (Prometheus); the admin token"
        " may too. With neither set, /metrics answers no one: it tells task counts.",
    )
    otel: bool = Field(
        default=False,
        description="Send OpenTelemetry traces (FastAPI, SQLAlchemy, httpx) over OTLP; needs"
        " the otel extra. On by itself when OTEL_EXPORTER_OTLP_ENDPOINT is set.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="OpenTelemetry's own variable: where the OTLP exporter sends traces"
        " (http://collector:4318); setting it turns tracing on when the otel extra is there.",
    )
    secure_cookies: bool | None = Field(
        default=None,
        description="Secure cookies on or off; unset: on exactly when AWAITHUMANS_PUBLIC_URL"
        " is https.",
    )
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For"
        " names the client: from them, the right-most address they did not add is the"
        " client's. Empty: the header is ignored and the client is the socket peer.",
    )
    login_limit_per_account_address: RateLimit = Field(
        default=(5, 300.0),
        description="Failed sign-ins allowed per account from one client address,"
        " COUNT/SECONDS; then 429 with Retry-After. A success resets it.",
    )
    login_limit_per_account: RateLimit = Field(
        default=(20, 3600.0),
        description="Failed sign-ins allowed per account across all addresses, COUNT/SECONDS"
        " (a success resets it); an address the account signed in from in the last 30 days"
        " is exempt, so failing on purpose cannot lock the owner out there.",
    )
    login_limit_per_address: RateLimit = Field(
        default=(30, 600.0),
        description="Failed sign-ins allowed per client address across all accounts,"
        " COUNT/SECONDS (a success does not reset it).",
    )
    setup_limit_per_address: RateLimit = Field(
        default=(20, 600.0),
        description="Requests to the first-operator setup (page and API) per client"
        " address, COUNT/SECONDS.",
    )
    handoff_limit_per_address: RateLimit = Field(
        default=(300, 600.0),
        description="Signed handoff links (Slack, email) opened per client address, COUNT/SECONDS.",
    )
    one_click_limit_per_address: RateLimit = Field(
        default=(300, 600.0),
        description="Requests to email one-click answer pages (confirm and answer) per client"
        " address, COUNT/SECONDS.",
    )
    rate_limit_max_keys: int = Field(
        default=20_000,
        ge=100,
        description="Most addresses or accounts each of the 7 rate-limit tables remembers"
        " (about 320 bytes each: 45 MB at most with the default); the least recently seen are"
        " forgotten first, so a spray of addresses costs bounded memory. Limits are per"
        " process: with several replicas, each applies them on its own.",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=True)
            except ValueError as exc:
                # Named here, so the message says which entry ("*" and "10.0.0.1/8", whose
                # host bits are set, are refused rather than read as something wider).
                raise ValueError(f"{item!r} is not an IP address or CIDR network: {exc}") from None
        return items

    @field_validator("business_hours")
    @classmethod
    def _business_hours(cls, value: str | None) -> str | None:
        # Read at start-up, so a typo stops the server with the reason rather than
        # silently sending every reminder on the wall clock.
        if value is None or not value.strip():
            return None
        parse_business_hours(value)
        return " ".join(value.split())

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Users paste the URLs their other tools use; pick the async driver for them.
        if value.startswith("postgres://"):
            value = "postgresql://" + value[len("postgres://") :]
        if value.startswith("postgresql://"):
            return "postgresql+asyncpg://" + value[len("postgresql://") :]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value[len("sqlite:///") :]
        return value

    @field_validator("allow_private_callbacks", mode="before")
    @classmethod
    def _allow_words(cls, value: object) -> object:
        # The variable reads as a switch (true/false) with one middle setting (loopback).
        if isinstance(value, bool):
            return "all" if value else "none"
        if isinstance(value, str):
            word = value.strip().lower()
            return "all" if word in _YES else "none" if word in _NO else word
        return value

    @property
    def direct_engines(self) -> frozenset[str]:
        """The workflow engines this server delivers task outcomes into by itself."""
        engines = set()
        if self.temporal_address:
            engines.add("temporal")
        if self.prefect_api_url:
            engines.add("prefect")
        return frozenset(engines)

    @property
    def tracing(self) -> bool:
        """Whether traces are asked for (they are sent only if the otel extra is there)."""
        return self.otel or bool(self.otel_exporter_otlp_endpoint)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL or an in-memory database."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1].split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)

    def previous_payload_keys(self) -> list[str]:
        """``payload_key_previous`` split into its keys (empty when not rotating)."""
        if self.payload_key_previous is None:
            return []
        return [
            k.strip() for k in self.payload_key_previous.get_secret_value().split(",") if k.strip()
        ]

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"  # an IPv6 literal in a URL needs brackets
        return f"http://{host}:{self.port}"

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.base_url().startswith("https://")


_SECRET_WORDS = ("key", "token", "secret", "password")


def describe_error(exc: ValidationError) -> str:
    """One line naming the environment variable at fault (secrets are never echoed)."""
    first = exc.errors()[0]
    groups = (Settings, SlackSettings, EmailSettings, SmtpSettings, VerifierSettings)
    prefix = next(
        (str(g.model_config.get("env_prefix")) for g in groups if g.__name__ == exc.title),
        "AWAITHUMANS_",
    )
    where = "_".join(str(p) for p in first["loc"]).upper()
    name = where if where.startswith("AWAITHUMANS_") else prefix + where
    hidden = any(word in name.lower() for word in _SECRET_WORDS)
    shown = "" if hidden else f"={first.get('input')!r}"
    return f"{name}{shown} is not valid: {first['msg']}."
