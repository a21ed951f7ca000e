"""The mails of a task: the ask (details, time left, one-click answers, Open task) and,
when asked for, the outcome.

Every mail is multipart: a plain-text part that reads well on its own (and is what the
``logging`` transport prints), and an HTML part built for mail clients rather than browsers
(one table, inline styles, no remote images, no scripts). Headers that matter:

* ``Message-ID`` on the sender's domain: the delivery receipt, and what a reply's
  ``In-Reply-To`` names;
* ``Auto-Submitted: auto-generated`` (RFC 3834) and ``X-Auto-Response-Suppress``, so
  vacation responders stay quiet; ``auto-replied`` on the mails that answer a reply;
* no ``List-Unsubscribe``: these are transactional, one person asked about one task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from awaithumans.server.db.records import TaskRecord
from awaithumans.server.services.display import as_text, display, outcome_line, time_left
from awaithumans.server.services.nudge_notice import Nudge

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)

# Subjects stay on one line and short enough for every client's list view.
_SUBJECT_MAX = 150
_SPACE = re.compile(r"\s+")

TASK_HEADER = "X-Awaithumans-Task"


@dataclass(frozen=True, slots=True)
class Action:
    """A one-click answer: a button in the mail, a link to its confirmation page."""

    label: str
    url: str
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Sender:
    address: str
    name: str | None = None
    reply_to: str | None = None


def one_line(text: str, limit: int = _SUBJECT_MAX) -> str:
    """``text`` on one line (headers may not hold line breaks), cut to ``limit``."""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def message_id(key: str, sender: Sender) -> str:
    """The ``Message-ID`` of the mail an outbox job sends: the same on every retry of the
    job (so a mail sent twice is recognisably one), unique to it, on the sender's domain."""
    return f"<{key}@{_domain(sender.address)}>"


def _message(
    sender: Sender, to: str, subject: str, task_id: str, msg_id: str, *, replying: bool = False
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(display_name=sender.name or "", addr_spec=sender.address)
    message["To"] = to
    if sender.reply_to:
        message["Reply-To"] = sender.reply_to
    message["Subject"] = one_line(subject)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = msg_id
    message["Auto-Submitted"] = "auto-replied" if replying else "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message[TASK_HEADER] = task_id
    return message


def _details(task: TaskRecord, payload: dict[str, Any] | None) -> dict[str, Any]:
    hidden = task.redact_payload or payload is None
    node = None if hidden else display(payload)
    return {
        "hidden": hidden,
        "node": node,
        "text": "" if node is None else as_text(node),
    }


def ask(
    task: TaskRecord,
    payload: dict[str, Any] | None,
    *,
    sender: Sender,
    to: str,
    key: str,
    open_url: str,
    actions: Sequence[Action] = (),
    replies: bool = False,
    now: datetime | None = None,
    nudge: Nudge | None = None,
) -> EmailMessage:
    """The mail that asks ``to`` to answer ``task``; ``replies``: the ``Reply-To`` is the
    signed address whose replies are read as answers (so the mail says so).

    ``nudge``: this ask is a reminder or an escalation; the subject starts with
    ``Reminder:`` / ``Escalated:`` and the mail says why it came, above the details.
    """
    now = now or datetime.now(UTC)
    values = {
        "task": task,
        "details": _details(task, payload),
        "left": time_left(task.timeout_at, now),
        "deadline": task.timeout_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "open_url": open_url,
        "actions": list(actions),
        "replies": replies,
        "notice": nudge.headline if nudge is not None else None,
    }
    subject = f"Review: {task.task}"
    if nudge is not None:
        subject = f"{nudge.prefix} {subject}"
    message = _message(sender, to, subject, task.id, message_id(key, sender))
    message.set_content(_templates.get_template("ask.txt").render(values))
    message.add_alternative(_templates.get_template("ask.html").render(values), subtype="html")
    return message


def outcome(
    task: TaskRecord,
    payload: dict[str, Any] | None,
    *,
    sender: Sender,
    to: str,
    key: str,
    open_url: str,
    in_reply_to: str | None = None,
    note: str | None = None,
    replying: bool = False,
) -> EmailMessage:
    """How ``task`` ended (or, with ``note``, what became of a reply), threaded under the
    mail it follows up."""
    values = {
        "task": task,
        "details": _details(task, payload),
        "line": outcome_line(task) if task.status.is_terminal else None,
        "note": note,
        "open_url": open_url,
    }
    subject = f"Re: Review: {task.task}"
    message = _message(sender, to, subject, task.id, message_id(key, sender), replying=replying)
    if in_reply_to:
        in_reply_to = one_line(in_reply_to, 998)
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(_templates.get_template("outcome.txt").render(values))
    message.add_alternative(_templates.get_template("outcome.html").render(values), subtype="html")
    return message
