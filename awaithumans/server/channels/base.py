"""The small interface every delivery channel implements.

The outbox dispatcher hands each due job to the handler registered for its kind
(``webhook``) or, for notifications, to the channel its route names (``slack``, ``email``).
A channel only reports what happened; retries, backoff, bookkeeping and the task's
lifecycle stay in the core, so adding Slack or email touches nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Job:
    """One outbox row, as a channel sees it."""

    id: int
    event_id: str
    task_id: str
    kind: str
    target: str
    event: str
    attempt: int
    task: Mapping[str, Any]
    response: dict[str, Any] | None
    payload: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a delivery attempt came to.

    ``delivered``: done. ``skipped``: nothing to do and nothing to retry (e.g. the channel is
    not configured). Otherwise it failed: ``retry`` says whether trying again can help.
    """

    delivered: bool = False
    skipped: bool = False
    retry: bool = True
    status_code: int | None = None
    error: str | None = None
    reached_human: bool = False

    @classmethod
    def ok(cls, status_code: int | None = None, *, reached_human: bool = False) -> Outcome:
        return cls(delivered=True, status_code=status_code, reached_human=reached_human)

    @classmethod
    def skip(cls, reason: str) -> Outcome:
        return cls(skipped=True, retry=False, error=reason)

    @classmethod
    def fail(cls, error: str, *, status_code: int | None = None, retry: bool = True) -> Outcome:
        return cls(retry=retry, status_code=status_code, error=error)


class Handler(Protocol):
    """Delivers jobs of one kind (``webhook``) or of one notify channel (``slack``)."""

    name: str

    async def deliver(self, job: Job) -> Outcome: ...

    async def aclose(self) -> None: ...


class ChannelRegistry:
    """Handlers by name. Notification routes are dispatched on their channel prefix."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, handler: Handler) -> None:
        self._handlers[handler.name] = handler

    def get(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    async def aclose(self) -> None:
        for handler in self._handlers.values():
            await handler.aclose()
