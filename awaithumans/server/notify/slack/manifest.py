"""The Slack app this server needs: its scopes, events and request URLs, as a manifest.

``awaithumans slack manifest --url https://…`` prints it with the URLs filled in, ready to
paste into api.slack.com → Create New App → From manifest; the OAuth install asks for the
same scopes.
"""

from __future__ import annotations

from typing import Any

#: What the bot does, and the scope each needs.
BOT_SCOPES = (
    "chat:write",  # post the task, rewrite it when it ends, reply in its thread
    "im:write",  # open a DM with the member a task goes to
    "users:read",  # @handle routes, the Users page's member picker
    "users:read.email",  # email routes; linking members to the directory by email
    "channels:read",  # #channel routes
    "groups:read",  # #private-channel routes
    "reactions:write",  # 👀 on a thread reply while the verifier reads it
    "channels:history",  # thread replies in public channels
    "groups:history",  # thread replies in private channels
    "im:history",  # thread replies in DMs
)
#: Message events in threads become answers (when the task's verifier reads free text).
BOT_EVENTS = ("message.channels", "message.groups", "message.im")
INTERACTIONS_PATH = "/api/channels/slack/interactions"
EVENTS_PATH = "/api/channels/slack/events"
OAUTH_CALLBACK_PATH = "/api/channels/slack/oauth/callback"


def manifest(url: str, *, name: str = "Await Humans", socket_mode: bool = False) -> dict[str, Any]:
    """The app manifest for a server at ``url`` (its public https address).

    With ``socket_mode`` Slack delivers over the websocket the server opens (an app-level
    token with ``connections:write``), so no request URL has to be reachable.
    """
    base = url.rstrip("/")
    settings: dict[str, Any] = {
        "org_deploy_enabled": False,
        "socket_mode_enabled": socket_mode,
        "token_rotation_enabled": False,
        "interactivity": {"is_enabled": True},
        "event_subscriptions": {"bot_events": list(BOT_EVENTS)},
    }
    if not socket_mode:
        settings["interactivity"]["request_url"] = base + INTERACTIONS_PATH
        settings["event_subscriptions"]["request_url"] = base + EVENTS_PATH
    return {
        "display_information": {
            "name": name,
            "description": "Tasks from AI agents that need a person's answer.",
        },
        "features": {
            "bot_user": {"display_name": name, "always_online": True},
        },
        "oauth_config": {
            "redirect_urls": [base + OAUTH_CALLBACK_PATH],
            "scopes": {"bot": list(BOT_SCOPES)},
        },
        "settings": settings,
    }
