"""The email channel: mail tasks to people, take their answers from links and replies.

:mod:`.channel` mails the ask (the outbox's handler); :mod:`.compose` builds the messages;
:mod:`.transports` sends them (SMTP, Resend, the terminal, a folder). Built from
``AWAITHUMANS_EMAIL_*`` and ``AWAITHUMANS_SMTP_*`` by :func:`email_channel`.
"""

from __future__ import annotations

from awaithumans.server.context import ServerContext
from awaithumans.server.notify.email.channel import EmailChannel
from awaithumans.server.notify.email.resend import ResendTransport
from awaithumans.server.notify.email.transports import (
    FileTransport,
    LoggingTransport,
    SmtpTransport,
    Transport,
)
from awaithumans.server.settings import EmailSettings


def build_transport(settings: EmailSettings) -> Transport:
    """The transport ``AWAITHUMANS_EMAIL_TRANSPORT`` names."""
    if settings.transport == "smtp":
        return SmtpTransport.from_settings(settings)
    if settings.transport == "resend":
        return ResendTransport.from_settings(settings)
    if settings.transport == "file":
        return FileTransport(settings.file_dir)
    return LoggingTransport()


def email_channel(ctx: ServerContext) -> EmailChannel:
    """The channel for the server's email settings and transport."""
    return EmailChannel(ctx, build_transport(ctx.settings.email))


__all__ = ["EmailChannel", "build_transport", "email_channel"]
