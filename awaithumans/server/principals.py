"""Who is making a request. Derived from the credential, never from a request body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["admin", "user", "agent", "system"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    Attributes:
        kind: ``admin`` (the admin bearer token), ``user`` (a directory user with a session),
            ``agent`` (a scoped agent API key) or ``system`` (the server itself: scheduler).
        id: Stable id (user id, agent key id, ``"admin"``, ``"scheduler"``).
        label: What the audit trail shows: an email, a display name or the key's name.
        is_operator: Full access to every task and the directory.
        scope_task_id: Set for a session opened by a signed handoff link: this principal
            sees and answers that one task, and nothing else (never as an operator).
    """

    kind: PrincipalKind
    id: str
    label: str | None = None
    is_operator: bool = False
    email: str | None = None
    display_name: str | None = None
    scope_task_id: str | None = None

    @property
    def can_answer(self) -> bool:
        return self.kind in ("admin", "user")

    @property
    def owner_id(self) -> str:
        """The ``owner_id`` stamped on tasks this principal creates."""
        return f"{self.kind}:{self.id}"


ADMIN = Principal(kind="admin", id="admin", label="admin token", is_operator=True)
SCHEDULER = Principal(kind="system", id="scheduler", label="timeout scheduler")
SYSTEM = Principal(kind="system", id="server", label="awaithumans server")
VERIFIER = Principal(kind="system", id="verifier", label="verifier")
