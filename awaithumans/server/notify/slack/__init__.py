"""The Slack channel: post tasks to channels and DMs, take answers in modals and threads.

:mod:`.channel` posts and rewrites messages (the outbox's handler); :mod:`.messages` builds
them; :mod:`.targets` resolves routes; :mod:`.workspace` holds the workspaces and their
directories. Built from ``AWAITHUMANS_SLACK_*`` by :func:`slack_channel`.
"""

from __future__ import annotations

from awaithumans.server.context import ServerContext
from awaithumans.server.notify.slack.channel import SlackChannel
from awaithumans.server.notify.slack.workspace import Workspaces


def slack_channel(ctx: ServerContext) -> SlackChannel:
    """The channel for the server's Slack settings."""
    slack = ctx.settings.slack
    token = slack.bot_token.get_secret_value() if slack.bot_token else None
    return SlackChannel(ctx, Workspaces(token, slack.api_url))


__all__ = ["SlackChannel", "slack_channel"]
