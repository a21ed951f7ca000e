"""Resend's HTTP API as a transport, through its official SDK (the ``email-resend`` extra).

The composed message is handed over as its parts (text, HTML) and the headers Resend lets
us set, so what Resend sends matches what SMTP would. The message's ``Message-ID`` is
fixed per outbox job, and doubles as Resend's idempotency key: a retry after a timeout
that Resend in fact completed sends nothing twice.

The SDK keeps its key and base URL in module globals (``resend.api_key``,
``resend.api_url``, the latter read from ``RESEND_API_URL`` at import). They are set just
before each call, with no ``await`` in between: the SDK reads both before its first
suspension, so concurrent sends cannot see each other's settings.
"""

from __future__ import annotations

import importlib
from email.message import EmailMessage
from typing import Any

from awaithumans.server.notify.email.transports import SendError
from awaithumans.server.settings import EmailSettings

EXTRA = "email-resend"
# Headers Resend takes from us; it writes From, To, Subject, Date and the rest itself.
_PASSED_HEADERS = ("Message-ID", "Auto-Submitted", "X-Auto-Response-Suppress",
                   "In-Reply-To", "References", "X-Awaithumans-Task")  # fmt: skip


class ResendTransport:
    """Sends through ``POST /emails`` of Resend's API."""

    name = "resend"

    def __init__(self, api_key: str) -> None:
        try:
            self._sdk: Any = importlib.import_module("resend")
            self._errors: Any = importlib.import_module("resend.exceptions")
        except ImportError:
            raise RuntimeError(
                f'AWAITHUMANS_EMAIL_TRANSPORT=resend needs pip install "awaithumans[{EXTRA}]"'
            ) from None
        self._key = api_key
        self._api_url: str = self._sdk.api_url

    @classmethod
    def from_settings(cls, settings: EmailSettings) -> ResendTransport:
        """The Resend account of ``AWAITHUMANS_RESEND_API_KEY``."""
        if settings.resend_api_key is None:
            raise ValueError("AWAITHUMANS_RESEND_API_KEY is required for the resend transport")
        return cls(settings.resend_api_key.get_secret_value())

    async def send(self, message: EmailMessage) -> str | None:
        sdk = self._sdk
        params: dict[str, Any] = {
            "from": str(message["From"]),
            "to": [str(message["To"])],
            "subject": str(message["Subject"]),
            "text": _part(message, "plain"),
            "html": _part(message, "html"),
            "headers": {h: str(message[h]) for h in _PASSED_HEADERS if message[h] is not None},
        }
        if message["Reply-To"] is not None:
            params["reply_to"] = str(message["Reply-To"])
        options = {"idempotency_key": str(message["Message-ID"])}
        sdk.api_key = self._key
        sdk.api_url = self._api_url
        try:
            sent = await sdk.Emails.send_async(params, options)
        except self._errors.ResendError as exc:
            failed = _failure(exc)
            if failed is None:
                return None
            raise failed from None
        return str(sent["id"])

    async def aclose(self) -> None:
        return None


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    return str(body.get_content()) if isinstance(body, EmailMessage) else ""


def _failure(exc: Any) -> SendError | None:
    """A ``resend.exceptions.ResendError`` as a send failure (retried or final); None when
    it means the mail already went."""
    code = str(exc.code)
    kind = str(exc.error_type)
    text = f"resend {code} {kind}: {exc.message}"
    if code == "409" and kind == "invalid_idempotent_request":
        # The key was used with another body: an earlier try (whose reply was lost) sent
        # this job's mail, with the minute-older "time left" it had then.
        return None
    if code == "429":
        return SendError(text, permanent=False, retry_after=_seconds(exc.headers))
    # 5xx, a concurrent request with the same key (409), and the SDK's own transport
    # failures (reported as 500) are worth retrying; a refused key, a bad address or an
    # unverified domain are not.
    return SendError(text, permanent=not (code.startswith("5") or code == "409"))


def _seconds(headers: Any) -> float | None:
    """Retry-After in seconds, if it is a number (an HTTP date is waited out by backoff)."""
    value = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
