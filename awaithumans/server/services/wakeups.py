"""Wake-ups for the background loops, reached by the code that makes work for them.

A commit that adds outbox rows should start their delivery now rather than at the next
safety-net scan; a new task with an early deadline should move the timeout scheduler's
next pass forward. The writes that cause this sit below the loops they wake (the outbox
dispatcher itself runs writes), so they hold this small object instead of the loops. The
app's startup connects it to the running loops; until then, and after shutdown, a wake-up
does nothing, which is safe: both loops scan the database when they start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime


def _ignore_outbox() -> None:
    return None


def _ignore_deadline(_at: datetime) -> None:
    return None


class Wakeups:
    """Where post-commit hooks send their "there is work" signals."""

    def __init__(self) -> None:
        self._outbox: Callable[[], None] = _ignore_outbox
        self._deadline: Callable[[datetime], None] = _ignore_deadline

    def connect(self, *, outbox: Callable[[], None], deadline: Callable[[datetime], None]) -> None:
        """Route wake-ups to the running outbox dispatcher and timeout scheduler."""
        self._outbox = outbox
        self._deadline = deadline

    def disconnect(self) -> None:
        self._outbox = _ignore_outbox
        self._deadline = _ignore_deadline

    def outbox(self) -> None:
        """Outbox rows were committed: deliver them now."""
        self._outbox()

    def deadline(self, at: datetime) -> None:
        """A task that times out at ``at`` was committed."""
        self._deadline(at)
