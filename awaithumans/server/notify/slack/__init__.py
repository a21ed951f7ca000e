"""The Slack channel: post tasks to channels and DMs, take answers in modals and threads.

:mod:`.channel` posts and rewrites messages (the outbox's handler); :mod:`.messages` builds
them; :mod:`.targets` resolves routes; :mod:`.workspace` holds the workspaces and their
directories. Built from ``AWAITHUMANS_SLACK_*`` by :func:`slack_channel`.
"""

from __future__ import annotations

from awaithumans.server.context import ServerContext
from awaithumans.server.notify.slack.channel import SlackChannel
from awaithumans.server.notify.slack.installs import install_token, list_installs
from awaithumans.server.notify.slack.workspace import Workspaces


def slack_channel(ctx: ServerContext) -> SlackChannel:
    """The channel for the server's Slack settings: the static token's workspace, and the
    workspaces installed through OAuth (tokens read, unsealed, on first use)."""
    slack = ctx.settings.slack
    token = slack.bot_token.get_secret_value() if slack.bot_token else None

    async def token_for(team_id: str) -> str | None:
        return await install_token(ctx.engine, ctx.sealer, team_id)

    async def installed_teams() -> list[str]:
        return [i.team_id for i in await list_installs(ctx.engine)]

    workspaces = Workspaces(
        token, slack.api_url, token_for=token_for, installed_teams=installed_teams
    )
    return SlackChannel(ctx, workspaces)


__all__ = ["SlackChannel", "slack_channel"]
