"""Replies by email: a person answers the mail in their own words.

A mail sent for a task whose verifier reads free text carries a signed ``Reply-To``
(:mod:`.reply_address`). A reply reaches :meth:`Replies.receive` as raw RFC 822 bytes, from
either door: ``POST /api/channels/email/inbound`` (a provider's inbound webhook, or an MTA
pipe, with the shared secret) or the built-in SMTP receiver (:mod:`.smtp_inbound`). Then:

1. Mail no person wrote is dropped: ``Auto-Submitted`` other than ``no`` (vacation
   responders), bounces and delivery reports, ``Precedence: bulk/junk/list``.
2. The signed address names the task and the person it was mailed to; the ``From`` must be
   that person's address, and a receiving server's verdict in ``Authentication-Results``
   (SPF, DKIM) must not say it was forged. Anything else is refused, and nobody is mailed
   (a forger must not learn anything, nor use us to mail someone).
3. The text they wrote (the quoted history, signature and client boilerplate stripped) goes
   to the answer path as free text, as the person, on that task alone.
4. They get an answer by mail, threaded under theirs: what was understood and recorded,
   why it was not taken (say it again), or how to answer instead.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from email import policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.notify.email.compose import Sender, outcome
from awaithumans.server.notify.email.reply_address import ReplyTo, read_reply_address
from awaithumans.server.notify.email.transports import SendError, Transport
from awaithumans.server.services import answers
from awaithumans.server.services.directory import DirectoryUser, active_user, as_principal
from awaithumans.server.services.handoff import task_link
from awaithumans.server.services.lifecycle import Channel
from awaithumans.server.services.replies import Later, takes_free_text, understood, verdict

log = logging.getLogger("awaithumans.server.email")

# Where a reply's own words end and the quoted mail begins, in the clients people use.
_QUOTE_STARTS = (
    re.compile(r"^On .+wrote:\s*$"),  # Gmail, Apple Mail, Thunderbird
    re.compile(r"^Le .+a écrit\s*:\s*$"),
    re.compile(r"^Am .+schrieb .+:\s*$"),
    re.compile(r"^-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),  # Outlook
    re.compile(r"^_{10,}\s*$"),  # Outlook's rule above From:/Sent:
    re.compile(r"^From: .+$"),  # a forwarded or Outlook-quoted header block
    re.compile(r"^-- $"),  # the signature separator
    re.compile(r"^Sent from my \w+", re.IGNORECASE),
)
_MAX_TEXT = 20_000


@dataclass(frozen=True, slots=True)
class Received:
    """What became of one inbound mail (the inbound route's reply, the logs)."""

    status: str  # answered | ignored | refused
    detail: str
    task_id: str | None = None
    #: What is left to do once the mail is acknowledged: wait for the verdict, mail back.
    later: Later | None = None


def reply_text(message: EmailMessage) -> str:
    """What the person wrote: the plain-text part down to the first quote marker, without
    ``>`` lines (an HTML-only mail is read with its tags removed)."""
    body = message.get_body(("plain", "html"))
    if not isinstance(body, EmailMessage):
        return ""
    try:
        text = str(body.get_content())
    except (LookupError, UnicodeError, ValueError, AssertionError):
        # An unknown or broken charset ("unknown-8bit"): read the bytes as UTF-8, leniently.
        raw = body.get_payload(decode=True)
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
    if body.get_content_subtype() == "html":
        text = re.sub(r"<(br|p|div)\b[^>]*>", "\n", text, flags=re.IGNORECASE)
        text = re.sub(r"<[^>]+>", "", text)
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if any(p.match(line.strip() if p.pattern != "^-- $" else line) for p in _QUOTE_STARTS):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()[:_MAX_TEXT]


def automatic(message: EmailMessage, envelope_from: str | None) -> str | None:
    """Why a mail was sent by a machine rather than a person (None: a person wrote it)."""
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if envelope_from == "" or str(message.get("Return-Path", "")).strip() == "<>":
        return "a bounce (empty return path)"
    if message.get_content_type() == "multipart/report":
        return "a delivery report"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return "an auto-responder"
    return None


def from_address(message: EmailMessage) -> str | None:
    """The one address in the one ``From`` header, lowercased; None for anything else
    (several From headers or addresses, or one the parser had to guess at). The address is
    the one in angle brackets, the one the receiving server's DMARC check read: a display
    name shaped like an address (``uma@acme.test <mallory@evil.test>``) is not it."""
    headers = message.get_all("From") or []
    if len(headers) != 1:
        return None
    header = headers[0]
    if not isinstance(header, AddressHeader) or len(header.addresses) != 1:
        return None
    if getattr(header, "defects", None):  # the parser guessed (typeshed lacks the attribute)
        return None
    address = header.addresses[0].addr_spec.strip().lower()
    return address if "@" in address else None


def forged(message: EmailMessage, sender: str) -> str | None:
    """The receiving server's word that the sender is not who they say; None when it says
    nothing against them.

    Only the topmost ``Authentication-Results`` counts: it is the one the last server (the
    one that handed us the mail) added; any below it may come from the sender. DMARC's
    verdict decides when there is one; otherwise a DKIM pass for the From's own domain
    outweighs an SPF failure (a forwarded mail), and a DKIM pass for another domain proves
    nothing."""
    results = message.get_all("Authentication-Results") or []
    if not results:
        return None
    text = str(results[0]).lower()
    # The first verdict per method (reversed, so earlier ones overwrite later ones).
    found = dict(reversed(re.findall(r"\b(spf|dkim|dmarc)=(\w+)", text)))
    if found.get("dmarc") == "pass":
        return None
    if found.get("dmarc") == "fail":
        return "DMARC failed"
    domain = sender.rpartition("@")[2]
    signers = re.findall(r"\bdkim=pass\b[^;]*?\bheader\.(?:d|i)=@?([\w.-]+)", text)
    if any(d == domain or domain.endswith("." + d) for d in signers):
        return None
    if found.get("spf") in ("fail", "softfail") or found.get("dkim") == "fail":
        return f"SPF {found.get('spf', 'none')}, DKIM {found.get('dkim', 'none')}"
    return None


class Replies:
    """Takes replies in; answers the people who wrote them."""

    def __init__(self, ctx: ServerContext, transport: Transport, sender: Sender) -> None:
        self._ctx = ctx
        self._transport = transport
        self._sender = sender

    @property
    def domain(self) -> str | None:
        return self._ctx.settings.email.reply_domain

    def addressed(self, address: str) -> ReplyTo | None:
        """The task and person a recipient address stands for, if we signed it."""
        domain = self.domain
        if domain is None:
            return None
        return read_reply_address(self._ctx.keyring, address, domain)

    async def receive(
        self, raw: bytes, recipients: list[str] | None = None, envelope_from: str | None = None
    ) -> Received:
        """Handle one inbound mail; ``recipients`` and ``envelope_from`` are the SMTP
        envelope's, when it came by SMTP."""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        why = automatic(message, envelope_from)
        if why is not None:
            return Received("ignored", f"sent by a machine: {why}")
        headers = [str(v) for h in ("To", "Cc", "Delivered-To", "X-Original-To")
                   for v in message.get_all(h) or []]  # fmt: skip
        candidates = [*(recipients or []), *(a for _n, a in getaddresses(headers))]
        target = next((t for t in map(self.addressed, candidates) if t is not None), None)
        if target is None:
            return Received("ignored", "not addressed to a reply address of this server")
        user = await active_user(self._ctx.engine, target.user_id)
        sender = from_address(message)
        if user is None or not user.email or sender is None or sender != user.email.lower():
            log.warning("email reply for %s refused: from %r", target.task_id, sender)
            return Received("refused", "the sender is not the person it was sent to",
                            target.task_id)  # fmt: skip
        spoofed = forged(message, sender)
        if spoofed is not None:
            log.warning("email reply for %s refused: %s", target.task_id, spoofed)
            return Received("refused", f"the sender did not authenticate: {spoofed}",
                            target.task_id)  # fmt: skip
        said = await self._answer(target.task_id, user, reply_text(message))

        async def later() -> None:
            # After the reply is acknowledged: the verdict can take the verifier's time.
            note = said if isinstance(said, str) else self._heard(await verdict(self._ctx, said))
            await self._tell(target.task_id, user, message, note)

        answered = not isinstance(said, str)
        status = "answered" if answered else "not_answered"
        return Received(status, "" if answered else str(said), target.task_id, later)

    async def _answer(self, task_id: str, user: DirectoryUser, text: str) -> str | TaskRecord:
        """Answer with ``text``: the task it submitted, or what to tell the person now."""
        task = await answers.load_task(self._ctx, task_id)
        if task is None:
            return "This task no longer exists; your reply changed nothing."
        if not takes_free_text(task):
            return ("Replies can't be read as answers to this task: use the buttons in the "
                    "mail, or open the task.")  # fmt: skip
        if not text:
            return "Your reply had no text I could read. Please write your decision."
        who = as_principal(user, scope_task_id=task_id)
        result = await answers.answer(self._ctx, task_id, who, Channel.EMAIL, None, text=text)
        if isinstance(result, answers.Refusal):
            if result.code is ErrorCode.TASK_ALREADY_TERMINAL:
                return "This task was already closed; your reply changed nothing."
            if result.taken_by is not None:
                return f"{result.taken_by} took this task; your reply changed nothing."
            if result.code in (ErrorCode.NOT_ASSIGNED_TO_YOU, ErrorCode.TASK_NOT_FOUND):
                return "This task isn't assigned to you any more; your reply changed nothing."
            return f"Your reply was not taken: {result.message}"
        if isinstance(result, answers.Invalid):
            return "I couldn't read an answer in that. Please write your decision."
        return result.task

    def _heard(self, task: TaskRecord) -> str:
        if task.status is TaskStatus.COMPLETED:
            items = "\n".join(f"  {i.label}: {i.value}" for i in understood(self._ctx, task))
            return f"Recorded. I understood:\n{items}" if items else "Recorded."
        reason = task.verification_reason or "the verifier gave no reason."
        if task.status is TaskStatus.REJECTED:
            return (f"I couldn't take that as your answer: {reason} "
                    "Please reply again, saying it plainly.")  # fmt: skip
        if task.status is TaskStatus.VERIFICATION_EXHAUSTED:
            return f"That was the last attempt: {reason} The task is closed."
        if task.status is TaskStatus.SUBMITTED:
            return "Your reply is stored; the check of it is not done yet."
        return f"The task is now {task.status.value.replace('_', ' ')}."

    async def _tell(
        self, task_id: str, user: DirectoryUser, incoming: EmailMessage, note: str
    ) -> None:
        task = await answers.load_task(self._ctx, task_id)
        if task is None or user.email is None:
            return
        base = self._ctx.settings.base_url()
        link = task_link(self._ctx.keyring, base, task.id, user.id, task.timeout_at)
        # One line, one id: a Message-ID carrying line breaks is not repeated into headers.
        found = re.search(r"<[^<>\s]+>", str(incoming.get("Message-ID", "")))
        message_id = found[0] if found else None
        mail = outcome(
            task,
            None,
            sender=self._sender,
            to=user.email,
            # Unique per note: two replies to one task get two notes.
            key=f"reply.{task.id}.{uuid.uuid4().hex}",
            open_url=link,
            in_reply_to=message_id,
            note=note,
            replying=True,
        )
        try:
            await self._transport.send(mail)
        except SendError as exc:
            # The answer is recorded either way; the note back is a courtesy.
            log.warning("email reply note for %s not sent: %s", task_id, exc)
