"""What a notification channel plugs into: its inbound routes and its construction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from fastapi import APIRouter, FastAPI

from awaithumans.server.context import ServerContext
from awaithumans.server.services.delivery import Handler

INBOUND_PREFIX = "/api/channels"


@runtime_checkable
class InboundChannel(Protocol):
    """A channel people answer through: Slack's interactions and events, email's links."""

    @property
    def name(self) -> str: ...

    def inbound(self) -> APIRouter:
        """The channel's routes, mounted under ``/api/channels/<name>/``."""
        ...


def mount_inbound(app: FastAPI, handlers: Iterable[Handler]) -> list[str]:
    """Mount the inbound routes of every handler that has some; returns their prefixes."""
    mounted = []
    for handler in handlers:
        if isinstance(handler, InboundChannel):
            prefix = f"{INBOUND_PREFIX}/{handler.name}"
            app.include_router(handler.inbound(), prefix=prefix)
            mounted.append(prefix)
    return mounted


def notify_channels(ctx: ServerContext) -> list[Handler]:
    """The notification channels the server's settings configure.

    A route naming a channel that is not configured is recorded and its jobs are skipped
    as "not configured"; the task is answered on the dashboard.
    """
    channels: list[Handler] = []
    slack = ctx.settings.slack
    if slack.configured:
        from awaithumans.server.notify.slack import slack_channel

        channels.append(slack_channel(ctx))
    if ctx.settings.email.configured:
        from awaithumans.server.notify.email import email_channel

        channels.append(email_channel(ctx))
    return channels
