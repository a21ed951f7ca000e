"""How a composed message leaves the server: SMTP, Resend, the terminal, or a folder.

Every transport takes a finished :class:`~email.message.EmailMessage` (headers, text and
HTML parts, its ``Message-ID``) and either hands it on or raises :class:`SendError`, which
says whether trying again can help. The outbox does the retrying; a transport makes one
attempt and classifies its failure:

* SMTP's 4xx replies, refused or dropped connections and timeouts are temporary (the
  relay is down or busy: the mail goes out when it is back);
* 5xx replies are final (a refused address, a bad login), recorded with the reply so the
  task's delivery log says why.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from awaithumans.server.security.private_files import make_private_dirs
from awaithumans.server.settings import EmailSettings


class SendError(Exception):
    """One attempt failed; ``permanent`` means no retry can fix it."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Transport(Protocol):
    """Sends one message; returns the provider's id for it when there is one."""

    @property
    def name(self) -> str: ...

    async def send(self, message: EmailMessage) -> str | None: ...

    async def aclose(self) -> None: ...


class SmtpTransport:
    """Any SMTP relay, through ``aiosmtplib``: STARTTLS (587), implicit TLS (465), auth.

    One connection per message: a relay keeps idle connections for seconds only, and a
    task's notification is rare enough that reconnecting costs nothing worth pooling.
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = True,
        use_tls: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._use_tls = use_tls
        # Implicit TLS already encrypts; STARTTLS on top of it is not a thing.
        self._start_tls = start_tls and not use_tls
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: EmailSettings) -> SmtpTransport:
        """The relay of ``AWAITHUMANS_SMTP_*``."""
        smtp = settings.smtp
        if smtp.host is None:
            raise ValueError("AWAITHUMANS_SMTP_HOST is required for the smtp transport")
        return cls(
            smtp.host,
            smtp.port,
            username=smtp.username,
            password=smtp.password.get_secret_value() if smtp.password else None,
            start_tls=smtp.start_tls,
            use_tls=smtp.use_tls,
            timeout=settings.send_timeout_seconds,
        )

    async def send(self, message: EmailMessage) -> str | None:
        try:
            errors, _reply = await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            raise _replied(first.code, f"{first.recipient}: {first.message}") from None
        except aiosmtplib.SMTPNotSupported as exc:
            # E.g. STARTTLS asked for and not offered: a setting to change, not to retry.
            raise SendError(
                f"smtp: {exc} (check AWAITHUMANS_SMTP_START_TLS / _USE_TLS)", permanent=True
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _replied(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendError(f"smtp: {type(exc).__name__}: {exc}", permanent=False) from None
        if errors:
            # Some recipients refused, the rest accepted; ours is one address per message.
            address, reply = next(iter(errors.items()))
            raise _replied(reply.code, f"{address}: {reply.message}")
        return None

    async def aclose(self) -> None:
        return None


def _replied(code: int, text: str) -> SendError:
    hint = ""
    if code in (530, 534, 535):
        hint = " (check AWAITHUMANS_SMTP_USERNAME and AWAITHUMANS_SMTP_PASSWORD)"
    return SendError(f"smtp {code}: {text}{hint}", permanent=500 <= code < 600)


class LoggingTransport:
    """Development: print each message's headers and text part to the server's stderr,
    where the person running ``awaithumans dev`` sees the links to click."""

    name = "logging"

    async def send(self, message: EmailMessage) -> str | None:
        text = message.get_body(("plain",))
        lines = [
            "─" * 72,
            *(
                f"{name}: {message[name]}"
                for name in ("From", "To", "Reply-To", "Subject")
                if message[name] is not None
            ),
            "",
            text.get_content().rstrip() if isinstance(text, EmailMessage) else "",
            "─" * 72,
        ]
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
        return None

    async def aclose(self) -> None:
        return None


class FileTransport:
    """Development and tests: write each message to ``<dir>/<time>-<task>.eml``, whole
    (headers and every part), for a mail client or a script to open."""

    name = "file"

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    async def send(self, message: EmailMessage) -> str | None:
        await asyncio.to_thread(self._write, message)
        return None

    def _write(self, message: EmailMessage) -> None:
        # Mail carries signed sign-in links: a folder we make is 0700 (one the user made
        # is theirs to set), and mkstemp creates each file 0600.
        make_private_dirs(self._dir)
        task = message.get("X-Awaithumans-Task", "mail")
        # Written aside and renamed: a reader polling the folder never sees half a message.
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(message.as_bytes())
        os.replace(tmp, self._dir / f"{time.time_ns()}-{task}.eml")

    async def aclose(self) -> None:
        return None
