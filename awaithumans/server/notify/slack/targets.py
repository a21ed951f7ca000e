"""Where a ``slack:`` route lands: a channel everyone in it sees, or one member's DM.

``#name`` and ``C…``/``G…`` are channels (a broadcast: first to claim takes the task);
``@handle``, ``U…``/``W…`` and an email address are members (a direct message). Names and
emails are looked up in the workspace; a route that cannot be resolved is a final failure
with the reason, recorded on the task's delivery log, never a failed create.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slack_sdk.errors import SlackApiError

from awaithumans.core._routes import NotifyRoute
from awaithumans.server.notify.slack.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved route: post to ``channel``; ``user`` is the DM's member."""

    kind: Literal["broadcast", "direct"]
    channel: str
    user: str | None = None


class Unresolved(LookupError):
    """The route names nobody (or nothing) in the workspace."""


async def resolve(workspace: Workspace, route: NotifyRoute) -> Target:
    """The channel to post ``route``'s message to.

    Raises:
        Unresolved: No such channel or member.
        SlackApiError: Slack failed to answer (retried by the outbox).
    """
    target, kind = route.target, route.target_kind
    if kind == "channel":
        if not route.is_slack_id:
            found = await workspace.directory.channel_id(target)
            if found is None:
                raise Unresolved(f"no channel #{target} the bot can see in {workspace.team_id}")
            return Target("broadcast", found)
        return Target("broadcast", target)
    user = await _member(workspace, route)
    return Target("direct", await _dm_channel(workspace, user), user)


async def _member(workspace: Workspace, route: NotifyRoute) -> str:
    if route.target_kind == "user_id":
        return route.target
    if route.target_kind == "handle":
        found = await workspace.directory.member_id(route.target)
        if found is None:
            raise Unresolved(f"no Slack member @{route.target} in {workspace.team_id}")
        return found
    try:
        answer = await workspace.client.users_lookupByEmail(email=route.target)
    except SlackApiError as exc:
        if exc.response.get("error") == "users_not_found":
            raise Unresolved(
                f"no Slack member with the email {route.target} in {workspace.team_id}"
            ) from None
        raise
    return str(answer["user"]["id"])


async def _dm_channel(workspace: Workspace, user: str) -> str:
    opened = await workspace.client.conversations_open(users=user)
    return str(opened["channel"]["id"])
