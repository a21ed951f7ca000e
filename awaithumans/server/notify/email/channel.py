"""The email channel: mail the ask (and, when asked for, the outcome); its inbound doors.

The outbox hands it each job of an ``email:`` route, sent as the server or as the route's
sender identity (``email+NAME:``, :mod:`.identities`). ``task.created`` mails the
recipient the task: someone not in the directory yet is added as a passwordless reviewer
(``added_by="email"``), and a recipient becomes the task's assignee when it has none. The
assignee's mail carries what answers it: one-click buttons (:mod:`.links`), an **Open
task** link signed for them, and, when the verifier reads free text, a signed reply
address (:mod:`.replies`); anyone else mailed gets the task's page. The ``Message-ID`` is
the delivery receipt.

A task's ending is not mailed by default: one mail per task, no storms. With
``AWAITHUMANS_EMAIL_NOTIFY_OUTCOME=true`` each recipient gets the outcome, threaded under
the ask.

Failures go back to the outbox as the transport classified them: a relay that is down is
retried with backoff until it is back; a refused address or a bad login ends the job, and
the reason shows in the task's delivery log.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter

from awaithumans.core._routes import NotifyRoute
from awaithumans.server.context import ServerContext
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.notify.email.answer_pages import answer_router
from awaithumans.server.notify.email.compose import Sender, ask, outcome
from awaithumans.server.notify.email.identities import load_identity
from awaithumans.server.notify.email.inbound import SmtpInbound, inbound_router
from awaithumans.server.notify.email.links import actions, expiry
from awaithumans.server.notify.email.replies import Replies
from awaithumans.server.notify.email.reply_address import reply_address
from awaithumans.server.notify.email.resend import ResendTransport
from awaithumans.server.notify.email.transports import SendError, SmtpTransport, Transport
from awaithumans.server.principals import SYSTEM
from awaithumans.server.services.answers import load_task
from awaithumans.server.services.approvers import answer_refusal, groups_for
from awaithumans.server.services.candidates import candidates_of
from awaithumans.server.services.delivery import Job, Outcome, RetryPolicy
from awaithumans.server.services.directory import (
    DirectoryUser,
    ReviewerByEmail,
    as_principal,
    user_by_email,
)
from awaithumans.server.services.events import CREATED_EVENT
from awaithumans.server.services.form_input import load_form
from awaithumans.server.services.handoff import task_link
from awaithumans.server.services.lifecycle import Channel, Moved
from awaithumans.server.services.nudge_notice import nudge_of
from awaithumans.server.services.policy import policy_of
from awaithumans.server.services.replies import takes_free_text
from awaithumans.server.services.task_actions import AssignRecipient

NAME = "email"


def reply_locator(message_id: str) -> str:
    """The receipt's lookup key: a reply's ``In-Reply-To`` names the mail it answers (the
    reply path itself trusts only the signed reply address)."""
    return f"email:{message_id.strip().strip('<>').lower()}"


class EmailChannel:
    """The ``email`` notification channel."""

    name = NAME

    def __init__(self, ctx: ServerContext, transport: Transport) -> None:
        self._ctx = ctx
        self.transport = transport
        self.replies = Replies(ctx, transport, self._sender())
        email = ctx.settings.email
        self.smtp_inbound: SmtpInbound | None = None
        if email.inbound_smtp_port is not None:
            host = email.inbound_smtp_host or ctx.settings.host
            self.smtp_inbound = SmtpInbound(self.replies, host, email.inbound_smtp_port)

    async def start(self) -> None:
        """Listen for replies over SMTP, when a port is configured."""
        if self.smtp_inbound is not None:
            await self.smtp_inbound.start()

    def inbound(self) -> APIRouter:
        """The one-click answer pages and the inbound-mail route, under
        ``/api/channels/email/``."""
        router = answer_router(self._ctx)
        router.include_router(inbound_router(self._ctx, self.replies))
        return router

    def policy(self) -> RetryPolicy:
        """A relay that is down for a while is waited out (backoff capped at 10 minutes,
        for a day); each attempt is bounded by the send timeout."""
        timeout = self._ctx.settings.email.send_timeout_seconds
        return RetryPolicy(max_attempts=150, max_backoff_seconds=600, claim_seconds=timeout * 4)

    def _sender(self) -> Sender:
        email = self._ctx.settings.email
        return Sender(email.sender, email.from_name, email.reply_to)

    def _reply_to(self, task: TaskRecord, user: DirectoryUser | None) -> str | None:
        """The signed address replies go to, when replies can be read (a reply domain is
        set and the task's verifier reads free text)."""
        domain = self._ctx.settings.email.reply_domain
        if domain is None or user is None or not takes_free_text(task):
            return None
        return reply_address(self._ctx.keyring, domain, task.id, user.id)

    async def deliver(self, job: Job) -> Outcome:
        route = job.route
        if route is None:
            return Outcome.fail("not an email route", retry=False)
        try:
            out = await self._way_out(route)
        except RuntimeError as exc:  # the identity's transport needs an extra not installed
            return Outcome.fail(f"email: {exc}", retry=False)
        if out is None:
            return Outcome.fail(
                f"email: no sender identity {route.qualifier!r}: add it in Settings → Email",
                retry=False,
            )
        sender, transport = out
        try:
            if job.event == CREATED_EVENT:
                return await self._ask(job, route, sender, transport)
            return await self._outcome(job, route, sender, transport)
        except SendError as exc:
            return Outcome.fail(str(exc), retry=not exc.permanent, retry_after=exc.retry_after)
        except (ValueError, RuntimeError) as exc:
            # The mail cannot be built or the transport cannot run as configured (an
            # address a header refuses, a missing extra): no retry changes that.
            return Outcome.fail(f"email: {exc}", retry=False)

    async def _way_out(self, route: NotifyRoute) -> tuple[Sender, Transport] | None:
        """Who the mail is from and how it leaves: the server's, or the route's sender
        identity (``email+NAME:``); None for an identity that does not exist."""
        if route.qualifier is None:
            return self._sender(), self.transport
        found = await load_identity(self._ctx.engine, self._ctx.sealer, route.qualifier)
        if found is None:
            return None
        i = found.identity
        sender = Sender(i.from_address, i.from_name, i.reply_to)
        if i.transport == "smtp" and i.smtp_host and i.smtp_port:
            timeout = self._ctx.settings.email.send_timeout_seconds
            smtp = SmtpTransport(i.smtp_host, i.smtp_port, username=i.smtp_username,
                                 password=found.secret, start_tls=i.smtp_start_tls,
                                 use_tls=i.smtp_use_tls, timeout=timeout)  # fmt: skip
            return sender, smtp
        if i.transport == "resend" and found.secret:
            return sender, ResendTransport(found.secret)
        return sender, self.transport

    async def _ask(
        self, job: Job, route: NotifyRoute, sender: Sender, transport: Transport
    ) -> Outcome:
        task = job.task
        recipient, answers_it = await self._recipient(job, route)
        # A signed link only for whom it can open the task: its assignee.
        open_url = task_link(
            self._ctx.keyring,
            self._ctx.settings.base_url(),
            task.id,
            recipient.id if recipient and answers_it else None,
            task.timeout_at,
        )
        buttons = []
        if recipient is not None and answers_it:
            form = load_form(task.form_definition, task.response_schema)
            until = expiry(task, self._ctx.settings.email.link_ttl_hours)
            base = self._ctx.settings.base_url()
            buttons = actions(self._ctx.keyring, base, task, form, recipient.id, until)
        reply_to = self._reply_to(task, recipient) if answers_it else None
        message = ask(
            task,
            job.payload,
            sender=replace(sender, reply_to=reply_to or sender.reply_to),
            to=route.target,
            key=f"{job.event_id}.{job.id}",
            open_url=open_url,
            actions=buttons,
            replies=reply_to is not None,
            nudge=nudge_of(job.body),
        )
        message_id = str(message["Message-ID"])
        provider_id = await transport.send(message)
        receipt = {
            "message_id": message_id,
            "to": route.target,
            "user": recipient.id if recipient else None,
            "transport": transport.name,
            "provider_id": provider_id,
        }
        return Outcome.ok(reached_human=True, receipt=receipt, locator=reply_locator(message_id))

    async def _outcome(
        self, job: Job, route: NotifyRoute, sender: Sender, transport: Transport
    ) -> Outcome:
        if not self._ctx.settings.email.notify_outcome:
            return Outcome.skip("outcome mails are off (AWAITHUMANS_EMAIL_NOTIFY_OUTCOME)")
        if not job.receipts:
            return Outcome.skip("no mail of this task went to this address")
        task = job.task
        first = job.receipts[0].ref
        message = outcome(
            task,
            job.payload,
            sender=sender,
            to=route.target,
            key=f"{job.event_id}.{job.id}",
            open_url=task_link(self._ctx.keyring, self._ctx.settings.base_url(), task.id),
            in_reply_to=str(first.get("message_id") or "") or None,
        )
        await transport.send(message)
        return Outcome.ok()

    async def _recipient(self, job: Job, route: NotifyRoute) -> tuple[DirectoryUser | None, bool]:
        """The recipient in the directory (added, if new), and whether the task is theirs
        to answer: they are assigned if it has no assignee yet. A recipient whose task is
        someone else's gets the mail without answer buttons or reply address."""
        # Read first: the recipient is nearly always known, and a write would queue behind
        # every other write of the server for nothing.
        known = await user_by_email(self._ctx.engine, route.target)
        if known is not None:
            user: DirectoryUser | None = known[0] if known[1] else None
        else:
            user = await self._ctx.writer.submit(ReviewerByEmail(route.target, NAME))
        if user is None:
            return None, False
        assignee = job.task.assigned_to_user_id
        if assignee is None:
            moved = await self._ctx.writer.submit(
                AssignRecipient(self._ctx, job.task_id, SYSTEM, Channel.EMAIL, user.id, str(route))
            )
            # Refused: another recipient's mail assigned it first (read who from the row).
            assignee = moved.task.assigned_to_user_id if isinstance(moved, Moved) else None
            if assignee is None:
                fresh = await load_task(self._ctx, job.task_id)
                assignee = fresh.assigned_to_user_id if fresh else None
        if assignee != user.id and policy_of(job.task).restricts_answerers:
            # A listed approver answers it too, assigned or not (services/approvers.py).
            who = as_principal(user, scope_task_id=job.task_id)
            groups = await groups_for(self._ctx.reader, who, job.task)
            return user, answer_refusal(who, job.task, groups) is None
        # Offered to several people (services/candidates.py): each may answer until one does.
        offered = assignee is None and user.id in candidates_of(job.task)
        return user, assignee == user.id or offered

    async def aclose(self) -> None:
        if self.smtp_inbound is not None:
            await self.smtp_inbound.aclose()
        await self.transport.aclose()
