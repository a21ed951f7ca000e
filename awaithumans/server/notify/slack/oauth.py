"""Installing the app in more workspaces: Slack's OAuth v2, started by an operator's link.

``GET /api/channels/slack/oauth/start?install_token=…`` (the operator-held
``AWAITHUMANS_SLACK_INSTALL_TOKEN``) sends the browser to Slack's consent page with a state
that is signed, good for ten minutes and bound to a cookie set on that browser;
``GET /api/channels/slack/oauth/callback`` checks all three, trades the code for the bot
token (``oauth.v2.access``) and stores the installation sealed with the payload key.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from fastapi import APIRouter, Request
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import AuthorizeUrlGenerator
from slack_sdk.web.async_client import AsyncWebClient
from starlette.responses import RedirectResponse, Response

from awaithumans.server.context import ServerContext
from awaithumans.server.dashboard.render import render
from awaithumans.server.notify.slack.installs import SaveInstall
from awaithumans.server.notify.slack.manifest import BOT_SCOPES, OAUTH_CALLBACK_PATH
from awaithumans.server.security import TokenError, tokens_equal
from awaithumans.server.security.signing import sign, verify

STATE_SECONDS = 600
STATE_COOKIE = "ah_slack_oauth"
_COOKIE_PATH = "/api/channels/slack/oauth"


def oauth_router(ctx: ServerContext, installed: Callable[[str], None]) -> APIRouter:
    """The install routes; ``installed(team_id)`` is told of each new or renewed install."""
    router = APIRouter(include_in_schema=False)
    slack = ctx.settings.slack
    key = ctx.keyring.derive("slack-oauth")
    redirect_uri = ctx.settings.base_url() + OAUTH_CALLBACK_PATH

    def page(request: Request, title: str, message: str, status: int) -> Response:
        return render(request, "message.html", {"title": title, "message": message},
                      status_code=status)  # fmt: skip

    @router.get("/oauth/start")
    async def start(request: Request, install_token: str = "") -> Response:
        expected = slack.install_token.get_secret_value() if slack.install_token else None
        if not (slack.client_id and slack.client_secret and expected):
            return page(request, "Slack install is not set up",
                        "This server has no AWAITHUMANS_SLACK_CLIENT_ID, _CLIENT_SECRET and"
                        " _INSTALL_TOKEN.", 404)  # fmt: skip
        if not install_token or not tokens_equal(install_token, expected):
            return page(request, "This install link is not valid",
                        "Ask the operator for the current install link.", 403)  # fmt: skip
        nonce = secrets.token_urlsafe(16)
        state = sign(key, {"n": nonce}, expires_at=int(time.time()) + STATE_SECONDS)
        url = AuthorizeUrlGenerator(
            client_id=slack.client_id, scopes=list(BOT_SCOPES), redirect_uri=redirect_uri
        ).generate(state)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            STATE_COOKIE, nonce, max_age=STATE_SECONDS, httponly=True, samesite="lax",
            secure=ctx.settings.cookies_secure, path=_COOKIE_PATH,
        )  # fmt: skip
        return response

    @router.get("/oauth/callback")
    async def callback(
        request: Request, code: str = "", state: str = "", error: str = ""
    ) -> Response:
        if error:
            return page(request, "Slack install cancelled", f"Slack said: {error}.", 400)
        try:
            claims = verify(ctx.keyring.verifying_keys("slack-oauth"), state)
        except TokenError:
            return page(request, "This install has expired",
                        "Start again from the install link (it is good for ten minutes).",
                        400)  # fmt: skip
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not cookie or not tokens_equal(cookie, str(claims.get("n", ""))):
            return page(request, "This install was started elsewhere",
                        "Finish it in the browser that opened the install link.", 400)  # fmt: skip
        if not (slack.client_id and slack.client_secret):
            return page(request, "Slack install is not set up",
                        "This server has no AWAITHUMANS_SLACK_CLIENT_ID and _CLIENT_SECRET.",
                        404)  # fmt: skip
        client = AsyncWebClient(base_url=slack.api_url or "https://slack.com/api/")
        try:
            found = await client.oauth_v2_access(
                client_id=slack.client_id,
                client_secret=slack.client_secret.get_secret_value(),
                code=code,
                redirect_uri=redirect_uri,
            )
        except SlackApiError as exc:
            return page(request, "Slack refused the install",
                        f"Slack said: {exc.response.get('error')}.", 400)  # fmt: skip
        team = found.get("team") or {}
        team_id, token = str(team.get("id") or ""), str(found.get("access_token") or "")
        if not team_id or not token:
            return page(request, "Slack refused the install", "No bot token came back.", 400)
        await ctx.writer.submit(
            SaveInstall(
                ctx.sealer, team_id, team.get("name"), found.get("bot_user_id"),
                found.get("scope"), token, installed_by=(found.get("authed_user") or {}).get("id"),
            )
        )  # fmt: skip
        installed(team_id)
        response = page(request, "Slack is installed",
                        f"awaithumans can now post to {team.get('name') or team_id}. Route a"
                        f" task there with notify=['slack+{team_id}:#channel'].", 200)  # fmt: skip
        response.delete_cookie(STATE_COOKIE, path=_COOKIE_PATH)
        return response

    return router
