"""Signed dashboard links that sign a person in for one task (Slack DMs, emails).

Someone who meets a task in Slack or in their inbox may have no password here (a Slack-only
or email-only reviewer). The link they get carries ``(user, task, expiry)`` signed with the
``handoff`` key derived from the payload key: checked without a database read, good until
the task's deadline, and it opens a session scoped to that task alone, never with rights
the person does not have (an operator's link opens a reviewer's view of that one task).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from awaithumans.server.security import KeyRing
from awaithumans.server.security.signing import TokenError, sign, verify

PATH = "/handoff"


@dataclass(frozen=True, slots=True)
class Handoff:
    user_id: str
    task_id: str
    expires_at: datetime


def handoff_url(
    keyring: KeyRing, base_url: str, user_id: str, task_id: str, expires_at: datetime
) -> str:
    """The link that signs ``user_id`` in for ``task_id`` until ``expires_at``."""
    token = sign(
        keyring.derive("handoff"),
        {"uid": user_id, "tid": task_id},
        expires_at=int(expires_at.timestamp()),
    )
    return f"{base_url}{PATH}?t={quote(token, safe='')}"


def task_link(
    keyring: KeyRing,
    base_url: str,
    task_id: str,
    user_id: str | None = None,
    until: datetime | None = None,
) -> str:
    """The task's page; for a directory user, a handoff link that signs them in (for that
    task only, until ``until``, its deadline) even without a password."""
    if user_id is None or until is None:
        return f"{base_url}/task?id={task_id}"
    return handoff_url(keyring, base_url, user_id, task_id, until)


def read_handoff(keyring: KeyRing, token: str) -> Handoff:
    """The handoff a link's token carries.

    Raises:
        ExpiredTokenError: It was issued here, and its task's deadline has passed.
        InvalidSignatureError: Altered, truncated, or not issued by this server.
    """
    claims = verify(keyring.verifying_keys("handoff"), token)
    user_id, task_id = claims.get("uid"), claims.get("tid")
    if not isinstance(user_id, str) or not isinstance(task_id, str):
        raise TokenError("the link does not name a person and a task")
    return Handoff(user_id, task_id, datetime.fromtimestamp(int(claims["exp"]), UTC))
