"""The Slack channel's outbound half: ask in a channel or a DM, rewrite on the task's end.

The outbox hands it each job of a ``slack:`` route. ``task.created`` posts the ask (a
broadcast with a Claim button, or a DM with "Approve in Slack") and returns where it landed
as the delivery receipt; every ending (completed from any channel, timed out, cancelled,
verification exhausted) rewrites each message of the route with ``chat.update``, from those
receipts, so no button stays pressable on a closed task.

Slack's failures go back to the outbox: a rate limit with its ``Retry-After``, an outage
retried with backoff; errors no retry can fix (a bad token, a channel the bot is not in)
end the job with the reason and a hint, visible on the task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from slack_sdk.errors import SlackApiError

from awaithumans.server.context import ServerContext
from awaithumans.server.notify.slack.inbound import slack_router
from awaithumans.server.notify.slack.interactions import Interactions
from awaithumans.server.notify.slack.messages import ask_broadcast, ask_direct, closed
from awaithumans.server.notify.slack.modal import unfit_reason
from awaithumans.server.notify.slack.oauth import oauth_router
from awaithumans.server.notify.slack.people import directory_user
from awaithumans.server.notify.slack.socket_mode import SocketModeLink
from awaithumans.server.notify.slack.targets import Target, Unresolved, resolve
from awaithumans.server.notify.slack.threads import ThreadReplies
from awaithumans.server.notify.slack.workspace import (
    DEFAULT_API_URL,
    UNREACHABLE,
    NoWorkspace,
    Workspace,
    Workspaces,
)
from awaithumans.server.principals import SYSTEM
from awaithumans.server.services import answers
from awaithumans.server.services.delivery import Job, Outcome
from awaithumans.server.services.events import CREATED_EVENT
from awaithumans.server.services.form_input import load_form
from awaithumans.server.services.handoff import task_link
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.nudge_notice import nudge_of
from awaithumans.server.services.task_actions import AssignRecipient
from awaithumans.server.services.votes import VOTED_EVENT

log = logging.getLogger("awaithumans.server.slack")

NAME = "slack"

# Errors that no retry can fix, and what to do about each.
_FINAL = {
    "invalid_auth": "check AWAITHUMANS_SLACK_BOT_TOKEN (or reinstall the app)",
    "not_authed": "check AWAITHUMANS_SLACK_BOT_TOKEN",
    "token_revoked": "the app was uninstalled: reinstall it",
    "account_inactive": "the bot's account is deactivated: reinstall the app",
    "missing_scope": "add the scope to the app's manifest and reinstall it",
    "channel_not_found": "check the channel, and invite the bot: /invite @awaithumans",
    "not_in_channel": "invite the bot to the channel: /invite @awaithumans",
    "is_archived": "the channel is archived",
    "user_not_found": "check the member id",
    "cannot_dm_bot": "a bot cannot be sent a DM",
    "invalid_blocks": "the message was refused as built (a bug: please report it)",
}


def thread_locator(channel: str, ts: str) -> str:
    """How a reply in a message's thread finds the message's task again."""
    return f"slack:{channel}:{ts}"


def failure(exc: SlackApiError) -> Outcome:
    """The outcome of a Slack error: final with a hint, or retried (after Retry-After)."""
    response = exc.response
    code = str(response.get("error") or "unknown_error")
    if response.status_code == 429:
        wait = float(response.headers.get("Retry-After", "1") or 1)
        return Outcome.fail(f"slack: rate limited ({wait:g} s)", status_code=429, retry_after=wait)
    if code in _FINAL:
        return Outcome.fail(f"slack: {code}: {_FINAL[code]}", retry=False)
    return Outcome.fail(f"slack: {code}", status_code=response.status_code)


class SlackChannel:
    """The ``slack`` notification channel (its inbound half mounts on top of it)."""

    name = NAME

    def __init__(self, ctx: ServerContext, workspaces: Workspaces) -> None:
        self._ctx = ctx
        self.workspaces = workspaces
        self.interactions = Interactions(ctx, workspaces, self.dashboard_link)
        self.threads = ThreadReplies(ctx, workspaces, thread_locator)
        slack = ctx.settings.slack
        self.socket: SocketModeLink | None = None
        if slack.app_token is not None:
            self.socket = SocketModeLink(
                slack.app_token.get_secret_value(),
                slack.api_url or DEFAULT_API_URL,
                self._interaction,
                self._event,
            )

    async def start(self) -> None:
        """Open the Socket Mode websocket, when configured (in the background)."""
        if self.socket is not None:
            self.socket.start()

    def inbound(self) -> APIRouter:
        """Slack's request URLs, mounted under ``/api/channels/slack/``."""
        secret = self._ctx.settings.slack.signing_secret
        router = slack_router(
            secret.get_secret_value() if secret else None,
            self._interaction,
            self._event,
        )
        router.include_router(oauth_router(self._ctx, self.workspaces.forget))
        return router

    async def _interaction(self, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, Any]:
        reply = await self.interactions.handle(payload)
        return reply.body, reply.later

    async def _event(self, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, Any]:
        return None, await self.threads.handle(payload)

    async def deliver(self, job: Job) -> Outcome:
        route = job.route
        if route is None:
            return Outcome.fail("not a slack route", retry=False)
        try:
            workspace = await self.workspaces.for_team(route.qualifier)
            if job.event == CREATED_EVENT:
                return await self._ask(workspace, job)
            if job.event == VOTED_EVENT:
                return await self._progress(workspace, job)
            return await self._close(workspace, job)
        except NoWorkspace as exc:
            return Outcome.fail(f"slack: {exc}", retry=False)
        except Unresolved as exc:
            return Outcome.fail(f"slack: {exc}", retry=False)
        except SlackApiError as exc:
            return failure(exc)
        except UNREACHABLE as exc:
            return Outcome.fail(f"slack: {type(exc).__name__}: {exc}")

    async def _ask(self, workspace: Workspace, job: Job) -> Outcome:
        assert job.route is not None
        target = await resolve(workspace, job.route)
        task = job.task
        nudge = nudge_of(job.body)  # a reminder or escalation: the ask again, marked
        if target.kind == "direct":
            recipient = await self._recipient(workspace, job, target)
            link = self.dashboard_link(task.id, task.timeout_at, recipient)
            unfit = unfit_reason(load_form(task.form_definition, task.response_schema))
            text, blocks = ask_direct(
                task, job.payload, link, unfit=unfit, nudge=nudge, approvals=job.approvals
            )
        else:
            text, blocks = ask_broadcast(task, job.payload, nudge=nudge, approvals=job.approvals)
        posted = await workspace.client.chat_postMessage(
            channel=target.channel, text=text, blocks=blocks, unfurl_links=False
        )
        channel, ts = str(posted["channel"]), str(posted["ts"])
        receipt = {
            "team": workspace.team_id,
            "channel": channel,
            "ts": ts,
            "kind": target.kind,
            "user": target.user,
        }
        return Outcome.ok(reached_human=True, receipt=receipt, locator=thread_locator(channel, ts))

    async def _close(self, workspace: Workspace, job: Job) -> Outcome:
        if not job.receipts:
            return Outcome.skip("no message of this task was posted on this route")
        text, blocks = closed(job.task, job.payload, approvals=job.approvals)
        await self._rewrite(workspace, job, lambda _ref: (text, blocks))
        return Outcome.ok()

    async def _progress(self, workspace: Workspace, job: Job) -> Outcome:
        """A vote that did not decide: each message of the route shows the progress."""
        if not job.receipts or job.task.status.is_terminal:
            return Outcome.skip("nothing open to show the vote on")
        task = job.task
        unfit = unfit_reason(load_form(task.form_definition, task.response_schema))
        links: dict[str, str] = {}
        for receipt in job.receipts:
            member = receipt.ref.get("user")
            if receipt.ref.get("kind") == "direct" and isinstance(member, str):
                user = await directory_user(self._ctx, workspace, member)
                links[member] = self.dashboard_link(
                    task.id, task.timeout_at, user.id if user is not None else None
                )

        def message(ref: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
            member = ref.get("user")
            if ref.get("kind") == "direct" and isinstance(member, str):
                link = links[member]
                return ask_direct(task, job.payload, link, unfit=unfit, approvals=job.approvals)
            return ask_broadcast(task, job.payload, approvals=job.approvals)

        await self._rewrite(workspace, job, message)
        # The deciding vote may have landed meanwhile and its ending been written already:
        # never leave an ask over it.
        now = await answers.load_task(self._ctx, task.id)
        if now is not None and now.status.is_terminal:
            ended = closed(now, job.payload, approvals=job.approvals)
            await self._rewrite(workspace, job, lambda _ref: ended)
        return Outcome.ok()

    async def _rewrite(
        self,
        workspace: Workspace,
        job: Job,
        message: Callable[[dict[str, Any]], tuple[str, list[dict[str, Any]]]],
    ) -> None:
        """``chat.update`` each message of the job's route with ``message(its receipt)``."""
        for receipt in job.receipts:
            ref: dict[str, Any] = dict(receipt.ref)
            text, blocks = message(ref)
            try:
                await workspace.client.chat_update(
                    channel=ref["channel"], ts=ref["ts"], text=text, blocks=blocks
                )
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":
                    raise
                # Deleted in Slack meanwhile: nothing left to rewrite there.
                log.info("slack message %s of %s is gone", ref.get("ts"), job.task_id)

    async def _recipient(self, workspace: Workspace, job: Job, target: Target) -> str | None:
        """The DM's recipient in the directory (None if not there). They answer the task:
        assign them, if it has no assignee yet. Someone first seen here is linked by email,
        so their DM's dashboard button signs them in too."""
        if target.user is None:
            return None
        user = await directory_user(self._ctx, workspace, target.user)
        if user is None:
            return None
        if job.task.assigned_to_user_id is None:
            assert job.route is not None
            await self._ctx.writer.submit(
                AssignRecipient(
                    self._ctx, job.task_id, SYSTEM, Channel.SLACK, user.id, str(job.route)
                )
            )
        return user.id

    def dashboard_link(self, task_id: str, until: datetime, user_id: str | None) -> str:
        """The task page; signed for a directory user (see :func:`task_link`)."""
        base = self._ctx.settings.base_url()
        return task_link(self._ctx.keyring, base, task_id, user_id, until)

    async def aclose(self) -> None:
        if self.socket is not None:
            await self.socket.aclose()
        await self.workspaces.aclose()
