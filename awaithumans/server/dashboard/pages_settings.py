"""Operator page: server settings and agent keys (/settings)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from slack_sdk.errors import SlackApiError
from sqlalchemy import select, text
from starlette.responses import RedirectResponse, Response

from awaithumans.server.dashboard.access import ctx_of, require_operator
from awaithumans.server.dashboard.admin_common import (
    MAX_NAME,
    notice,
    operator_form,
    text_field,
)
from awaithumans.server.dashboard.render import render
from awaithumans.server.db.engine import current_revision
from awaithumans.server.db.models import AgentKeyRow
from awaithumans.server.notify.email.identities import list_identities
from awaithumans.server.notify.slack import SlackChannel
from awaithumans.server.notify.slack.installs import RemoveInstall, list_installs
from awaithumans.server.security.api_tokens import AGENT_KEY_PREFIX
from awaithumans.server.services.directory import (
    CreateAgentKey,
    NewAgentKey,
    RevokeAgentKey,
)
from awaithumans.server.services.events import VERIFY
from awaithumans.server.services.verifier_gate import provider_statuses
from awaithumans.server.version import __version__

router = APIRouter(include_in_schema=False)


async def _server_status(request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    settings = ctx.settings
    reachable = True
    try:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        reachable = False
    revision: str | None = None
    if reachable:
        try:
            revision = await current_revision(ctx.engine)
        except Exception:
            revision = None
    return {
        "version": __version__,
        "backend": ctx.engine.dialect.name,
        "reachable": reachable,
        "revision": revision,
        "public_url": settings.public_url,
        "base_url": settings.base_url(),
        "waiting": ctx.hub.waiting,
        "webhook_secret_set": settings.webhook_secret is not None,
        "admin_token_set": settings.admin_api_token is not None,
        "dev_mode": settings.dev_mode,
    }


def _channels(request: Request) -> list[dict[str, Any]]:
    ctx = ctx_of(request)
    names = ctx.handlers.names
    found = [
        {
            "name": "Webhooks",
            "configured": "webhook" in names,
            "detail": "Signed callbacks to each task's callback_url.",
            "env": [],
        },
        {
            "name": "Slack",
            "configured": "slack" in names,
            "detail": "Notify reviewers and let them answer in Slack.",
            "env": ["AWAITHUMANS_SLACK_BOT_TOKEN", "AWAITHUMANS_SLACK_SIGNING_SECRET"],
        },
        {
            "name": "Email",
            "configured": "email" in names,
            "detail": f"Notify reviewers by email: {ctx.settings.email.summary}.",
            "env": [],
        },
    ]
    # The verifier's jobs go through the outbox too; it has its own section.
    known = {"webhook", "slack", "email", VERIFY}
    found.extend(
        {"name": name, "configured": True, "detail": "Registered by the application.", "env": []}
        for name in names
        if name not in known
    )
    return found


async def _slack(request: Request) -> dict[str, Any] | None:
    """The Slack workspaces: the env token's (read-only) and the OAuth installs."""
    ctx = ctx_of(request)
    channel = ctx.handlers.get("slack")
    if not isinstance(channel, SlackChannel):
        return None
    slack = ctx.settings.slack
    env: dict[str, Any] | None = None
    if slack.bot_token is not None:
        try:
            # Asked of Slack once (auth.test), then remembered; a page never waits long.
            found = await asyncio.wait_for(channel.workspaces.static(), 3)
            if found is not None:
                env = {"team_id": found.team_id, "team_name": found.team_name}
        except (TimeoutError, SlackApiError, OSError) as exc:
            env = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    return {
        "env": env,
        "installs": await list_installs(ctx.engine),
        "oauth": slack.client_id is not None,
        "socket_mode": slack.app_token is not None,
        "signing_secret": slack.signing_secret is not None,
    }


async def _agent_keys(request: Request) -> list[dict[str, Any]]:
    async with ctx_of(request).engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    select(AgentKeyRow.__table__).order_by(
                        AgentKeyRow.created_at.desc(), AgentKeyRow.id
                    )
                )
            )
            .mappings()
            .all()
        )
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "prefix": r["prefix"],
            "created_at": r["created_at"],
            "revoked_at": r["revoked_at"],
        }
        for r in rows
    ]


async def _email(
    request: Request, values: dict[str, str] | None, errors: dict[str, str]
) -> dict[str, Any]:
    """Where mail goes, and the senders routes may name (``email+NAME:``)."""
    ctx = ctx_of(request)
    return {
        "configured": ctx.settings.email.configured,
        "summary": ctx.settings.email.summary,
        "identities": await list_identities(ctx.engine),
        "sender_form": values or {"transport": "server", "smtp_port": "587", "smtp_start_tls": "1"},
        "sender_errors": errors,
    }


async def settings_page_with(
    request: Request,
    *,
    new_key: NewAgentKey | None = None,
    key_name: str = "",
    errors: dict[str, str] | None = None,
    sender_values: dict[str, str] | None = None,
    sender_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The settings page, with what a form posted and its errors when it was refused."""
    errors = errors or {}
    return render(
        request,
        "settings.html",
        {
            "status": await _server_status(request),
            "channels": _channels(request),
            "verifiers": provider_statuses(),
            "slack": await _slack(request),
            "email": await _email(request, sender_values, sender_errors or {}),
            "verifier": ctx_of(request).settings.verifier,
            "keys": await _agent_keys(request),
            "new_key": new_key,
            "key_prefix": AGENT_KEY_PREFIX,
            "key_name": key_name,
            "errors": errors,
            "notice": None if errors or new_key or sender_errors else notice(request),
        },
        status_code=status_code,
    )


@router.get("/settings")
async def settings_page(request: Request) -> Response:
    await require_operator(request)
    return await settings_page_with(request)


@router.post("/settings/agent-keys")
async def create_agent_key(request: Request) -> Response:
    posted = await operator_form(request, "/settings")
    if isinstance(posted, Response):
        return posted
    who, form = posted
    ctx = ctx_of(request)
    name = text_field(form, "name")
    error = None
    if not name:
        error = "Name the key after the agent or service that will use it."
    elif len(name) > MAX_NAME:
        error = f"Keep it to {MAX_NAME} characters or fewer."
    elif "\x00" in name:
        error = "Contains a character that cannot be stored."
    if error is not None:
        return await settings_page_with(
            request, key_name=name, errors={"name": error}, status_code=400
        )
    made = await ctx.writer.submit(CreateAgentKey(name, who.owner_id))
    # The key exists only in this response (the database keeps its hash): no redirect, so
    # it never lands in a URL, a cookie or the browser history. The page is no-store.
    return await settings_page_with(request, new_key=made, status_code=201)


@router.post("/settings/agent-keys/{key_id}/revoke")
async def revoke_agent_key(request: Request, key_id: str) -> Response:
    posted = await operator_form(request, "/settings")
    if isinstance(posted, Response):
        return posted
    _who, _form = posted
    ctx = ctx_of(request)
    revoked = await ctx.writer.submit(RevokeAgentKey(key_id))
    ctx.auth.forget_keys()
    done = "revoked" if revoked else "already-revoked"
    return RedirectResponse(f"/settings?done={done}", status_code=303)


@router.post("/settings/slack/installs/{team_id}/remove")
async def remove_slack_install(request: Request, team_id: str) -> Response:
    posted = await operator_form(request, "/settings")
    if isinstance(posted, Response):
        return posted
    _who, _form = posted
    ctx = ctx_of(request)
    await ctx.writer.submit(RemoveInstall(team_id))
    channel = ctx.handlers.get("slack")
    if isinstance(channel, SlackChannel):
        channel.workspaces.forget(team_id)
    return RedirectResponse("/settings?done=slack-removed", status_code=303)
