"""What a reminder or an escalation says, shared by every channel.

A nudge goes out as the task's ask again (the outbox row's event stays ``task.created``, so
the channels, the outbox's ordering and the ending's rewrite of every message treat it as
one more ask); its body adds ``nudge`` (``reminder`` or ``escalation``), the step's number
and, for an escalation, how long nobody answered. :func:`nudge_of` reads that back, and the
:class:`Nudge` words it once for Slack and email alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

NudgeKind = Literal["reminder", "escalation"]
REMINDER: NudgeKind = "reminder"
ESCALATION: NudgeKind = "escalation"


def nudge_body(
    event: str, kind: NudgeKind, step: int, after_seconds: int, business_hours: bool
) -> dict[str, Any]:
    """The outbox body of a nudge's notification."""
    return {
        "event": event,
        "nudge": kind,
        "step": step,
        "after_seconds": after_seconds,
        "business_hours": business_hours,
    }


def duration_words(seconds: int) -> str:
    """``24 h``, ``90 min``, ``3 d``, ``1 h 30 min``: short, for a line people skim."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if rest:
        return f"{hours} h {rest} min"
    if hours >= 72 and hours % 24 == 0:
        return f"{hours // 24} d"
    return f"{hours} h"


@dataclass(frozen=True, slots=True)
class Nudge:
    """A reminder or escalation, as a notification carries it."""

    kind: NudgeKind
    step: int
    after_seconds: int
    business_hours: bool = False

    @property
    def prefix(self) -> str:
        """What a subject or message text starts with."""
        return "Reminder:" if self.kind == REMINDER else "Escalated:"

    @property
    def headline(self) -> str:
        """The one line that says why this came again, or came to someone new."""
        if self.kind == REMINDER:
            return "Reminder: still waiting for your answer"
        counted = " of business hours" if self.business_hours else ""
        return f"Escalated: nobody answered in {duration_words(self.after_seconds)}{counted}"


def nudge_of(body: Mapping[str, Any]) -> Nudge | None:
    """The nudge a notification's body carries; None for a first ask (or anything else)."""
    kind = body.get("nudge")
    if kind not in (REMINDER, ESCALATION):
        return None
    return Nudge(
        kind=REMINDER if kind == REMINDER else ESCALATION,
        step=int(body.get("step") or 0),
        after_seconds=int(body.get("after_seconds") or 0),
        business_hours=bool(body.get("business_hours")),
    )
