"""One-click answers in a mail: which forms get them, and the signed links behind them.

A mail offers a button per choice when the form's first required field is a switch or a
single select with at most :data:`MAX_CHOICES` options, and every other required field is
text the confirmation page can ask for (the common "approved + notes" form included).

Each button is a link to a confirmation page. Following it (GET, HEAD: what link scanners
and mail prefetchers do) shows the choice and changes nothing; only the page's POST
answers. The link carries ``(recipient, task, field, value, attempt)`` signed with the
``email-action`` key derived from the payload key: nothing is stored, so links survive a
restart, and a changed byte fails the signature. It expires after
``AWAITHUMANS_EMAIL_LINK_TTL_HOURS`` or at the task's deadline, whichever is first.

Links are single use without a table of used links: once any answer is given the task is
no longer open (a replay, or the other button, finds it answered), and a link minted
before a verifier's rejection names an older ``attempt`` than the task now has, so it
cannot answer again either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from awaithumans.core._forms import FieldKind, FormDefinition, FormField
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.notify.email.compose import Action
from awaithumans.server.security import KeyRing
from awaithumans.server.security.signing import TokenError, sign, verify

MAX_CHOICES = 4
PATH = "/api/channels/email/answer"
# Fields the confirmation page can ask for, next to the one-click choice.
TEXT_KINDS = frozenset({FieldKind.SHORT_TEXT, FieldKind.LONG_TEXT})


@dataclass(frozen=True, slots=True)
class Choice:
    label: str
    value: Any


@dataclass(frozen=True, slots=True)
class AnswerLink:
    """What a one-click link says: ``user_id`` answers ``field = value`` on ``task_id``."""

    user_id: str
    task_id: str
    field: str
    value: Any
    attempt: int
    expires_at: datetime


def one_click_field(form: FormDefinition) -> FormField | None:
    """The field the mail's buttons answer, or None if the form is not for one click."""
    required = [f for f in form.fields if f.required]
    if not required:
        return None
    first = required[0]
    if first.kind == FieldKind.SINGLE_SELECT:
        if not first.options or len(first.options) > MAX_CHOICES:
            return None
    elif first.kind != FieldKind.SWITCH:
        return None
    if any(f.kind not in TEXT_KINDS for f in required[1:]):
        return None
    return first


def choices(field: FormField) -> list[Choice]:
    """The buttons of ``field``: Yes / No for a switch, the options of a select."""
    if field.kind == FieldKind.SWITCH:
        return [Choice("Yes", True), Choice("No", False)]
    return [Choice(o.label, o.value) for o in field.options or []]


def text_fields(form: FormDefinition, chosen: str) -> list[FormField]:
    """What the confirmation page asks for besides the choice (notes and the like)."""
    return [f for f in form.fields if f.name != chosen and f.kind in TEXT_KINDS]


def label_of(field: FormField, value: Any) -> str:
    for choice in choices(field):
        if choice.value == value and type(choice.value) is type(value):
            return choice.label
    return str(value)


def expiry(task: TaskRecord, ttl_hours: float, now: datetime | None = None) -> datetime:
    """When a link minted now stops working: the TTL or the deadline, whichever is first."""
    now = now or datetime.now(UTC)
    return min(now + timedelta(hours=ttl_hours), task.timeout_at)


def answer_url(keyring: KeyRing, base_url: str, link: AnswerLink) -> str:
    claims = {
        "uid": link.user_id,
        "tid": link.task_id,
        "f": link.field,
        "v": link.value,
        "a": link.attempt,
    }
    token = sign(
        keyring.derive("email-action"), claims, expires_at=int(link.expires_at.timestamp())
    )
    return f"{base_url}{PATH}?t={quote(token, safe='')}"


def actions(
    keyring: KeyRing,
    base_url: str,
    task: TaskRecord,
    form: FormDefinition,
    user_id: str,
    until: datetime,
) -> list[Action]:
    """The mail's one-click buttons for ``user_id`` (none if the form does not allow it)."""
    field = one_click_field(form)
    if field is None:
        return []
    made = []
    for n, choice in enumerate(choices(field)):
        link = AnswerLink(
            user_id, task.id, field.name, choice.value, task.verification_attempt, until
        )
        made.append(Action(choice.label, answer_url(keyring, base_url, link), primary=n == 0))
    return made


def read_answer_link(keyring: KeyRing, token: str) -> AnswerLink:
    """The link a token carries.

    Raises:
        ExpiredTokenError: Issued here, and past its TTL or the task's deadline.
        TokenError: Altered, truncated, or not issued by this server.
    """
    claims = verify(keyring.verifying_keys("email-action"), token)
    user_id, task_id, field = claims.get("uid"), claims.get("tid"), claims.get("f")
    attempt = claims.get("a")
    if not (isinstance(user_id, str) and isinstance(task_id, str) and isinstance(field, str)):
        raise TokenError("the link does not name a person, a task and a field")
    if not isinstance(attempt, int) or "v" not in claims:
        raise TokenError("the link names no answer")
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    return AnswerLink(user_id, task_id, field, claims["v"], attempt, expires)
