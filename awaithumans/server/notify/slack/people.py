"""Who clicked in Slack: the directory user behind a Slack member, linked on first sight.

A member already linked (``slack_user_id`` in the directory) is that user. Otherwise, the
first time they are seen (a DM goes to them, or they click), the member's email
(``users.info``) is matched to an active directory user with that email and no Slack member
yet, and the two are linked. Anyone else is not in the
directory and is told so; Slack is never trusted for more than who clicked.
"""

from __future__ import annotations

from awaithumans.server.context import ServerContext
from awaithumans.server.notify.slack.workspace import Workspace, member_of
from awaithumans.server.principals import Principal
from awaithumans.server.services.directory import (
    DirectoryUser,
    LinkSlackMember,
    as_principal,
    user_by_slack_id,
)


def principal_of(user: DirectoryUser, slack_user_id: str) -> Principal:
    """The directory user as the answer path sees them (named ``@member`` at worst)."""
    return as_principal(user, fallback_name=f"@{slack_user_id}")


async def directory_user(
    ctx: ServerContext, workspace: Workspace, slack_user_id: str
) -> DirectoryUser | None:
    """The directory user who is Slack member ``slack_user_id`` (linking them by email the
    first time), or None."""
    user = await user_by_slack_id(ctx.engine, slack_user_id)
    if user is None:
        info = await workspace.client.users_info(user=slack_user_id)
        member = member_of(info["user"])
        if member.email:
            user = await ctx.writer.submit(LinkSlackMember(member.email, slack_user_id))
    return user


async def person(ctx: ServerContext, workspace: Workspace, slack_user_id: str) -> Principal | None:
    """The directory user who is Slack member ``slack_user_id``, as the answer path sees
    them, or None."""
    user = await directory_user(ctx, workspace, slack_user_id)
    return principal_of(user, slack_user_id) if user is not None else None
