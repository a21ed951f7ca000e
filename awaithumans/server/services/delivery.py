"""The one interface between the outbox and everything it delivers to.

The outbox dispatcher hands each due job to the handler registered for it: engine
deliveries (``server/engines/``: signed webhooks, Temporal signals, Prefect resumes) by the
job's kind, human notifications (``server/notify/``: Slack, email) by the channel their
route names. A handler only says what happened, as an :class:`Outcome`; retries, backoff,
bookkeeping, delivery receipts and the task's lifecycle stay in the outbox, so adding a
channel touches nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.core._routes import NotifyRoute
from awaithumans.core._wire import ApprovalView
from awaithumans.server.db.models import DeliveryReceiptRow
from awaithumans.server.db.records import TaskRecord


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where an earlier notification for the same route landed.

    Attributes:
        channel: The channel that delivered it (``slack``, ``email``).
        ref: The channel's own reference, opaque to everything else: a Slack channel and
            message ``ts``, an email ``Message-ID``. Enough to update or answer the message.
        outbox_id: The job that delivered it.
    """

    channel: str
    ref: Mapping[str, Any]
    outbox_id: int


@dataclass(frozen=True, slots=True)
class Job:
    """One outbox row, as a handler sees it.

    Attributes:
        event: ``task.created``, ``task.completed``, ...
        attempt: 1 for the first try.
        target: The webhook URL, workflow id or flow run id; for notifications the route
            as written at create time (``route`` holds it parsed).
        route: The parsed notify route; None for engine deliveries.
        receipts: For a notification, where earlier notifications of this task on the same
            route landed (oldest first), so a channel can update its message.
        response: The answer, decrypted (None until there is one).
        payload: The payload, decrypted; None when the task's payload is redacted.
    """

    id: int
    event_id: str
    task_id: str
    kind: str
    target: str
    event: str
    attempt: int
    task: TaskRecord
    response: dict[str, Any] | None
    payload: dict[str, Any] | None
    route: NotifyRoute | None = None
    receipts: tuple[Receipt, ...] = ()
    #: The row's body as written with it (its event, and what else its kind records).
    body: Mapping[str, Any] = field(default_factory=dict)
    #: The votes of a task that needs several approvals, oldest first (services/votes.py).
    approvals: tuple[ApprovalView, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a delivery attempt came to.

    ``delivered``: done. ``skipped``: nothing to do and nothing to retry (e.g. the channel is
    not configured). Otherwise it failed: ``retry`` says whether trying again can help.
    ``reached_human``: a notification is in front of a person (the task becomes
    ``notified``); ``receipt`` is the channel's reference to what it sent, kept as a
    delivery receipt for the jobs that follow on the same route.
    """

    delivered: bool = False
    skipped: bool = False
    retry: bool = True
    status_code: int | None = None
    error: str | None = None
    reached_human: bool = False
    receipt: Mapping[str, Any] | None = field(default=None)
    #: The receiver asked for this long a pause before the next try (HTTP Retry-After).
    retry_after: float | None = None
    #: A key that finds this task again from what was sent (a Slack message's channel and
    #: ts, an email's Message-ID), when a reply to it comes back.
    locator: str | None = None

    @classmethod
    def ok(
        cls,
        status_code: int | None = None,
        *,
        reached_human: bool = False,
        receipt: Mapping[str, Any] | None = None,
        locator: str | None = None,
    ) -> Outcome:
        return cls(
            delivered=True,
            status_code=status_code,
            reached_human=reached_human,
            receipt=receipt,
            locator=locator,
        )

    @classmethod
    def skip(cls, reason: str) -> Outcome:
        return cls(skipped=True, retry=False, error=reason)

    @classmethod
    def fail(
        cls,
        error: str,
        *,
        status_code: int | None = None,
        retry: bool = True,
        retry_after: float | None = None,
    ) -> Outcome:
        return cls(retry=retry, status_code=status_code, error=error, retry_after=retry_after)


#: The longest pause a receiver's ``Retry-After`` may ask for: the outbox's own longest
#: backoff. A receiver saying "come back tomorrow" (or in 2099) would otherwise hold the
#: event past any use, and what it is owed is a few more tries, not obedience.
MAX_RETRY_AFTER_SECONDS = 3600.0


def retry_after_seconds(
    value: str | None, *, now: datetime | None = None, cap: float = MAX_RETRY_AFTER_SECONDS
) -> float | None:
    """An HTTP ``Retry-After`` as seconds from ``now``, within [0, ``cap``].

    Both forms of RFC 9110 are understood: delay-seconds (``120``) and an HTTP date
    (``Wed, 21 Oct 2015 07:28:00 GMT``). Anything else is None: the outbox's own backoff
    applies, as if the header were absent.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        seconds = float(int(text[:12]))  # 12 digits are years already; the cap applies
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # HTTP dates are GMT; a naive one is taken as such
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), cap)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the outbox retries one kind of job.

    Attributes:
        max_attempts: Attempts before the job is given up; None keeps trying until the
            handler delivers or skips it (a verification ends with its task's deadline).
        max_backoff_seconds: The longest wait between two attempts.
        claim_seconds: The longest one attempt may run: the delivering process renews its
            short lease on the job until then (a process that dies frees it within
            ``outbox_rows.LEASE_SECONDS``); a job still running after this is left to be
            retried by any process.
    """

    max_attempts: int | None
    max_backoff_seconds: float = 3600.0
    claim_seconds: float = 120.0


class Handler(Protocol):
    """Delivers jobs of one kind (``webhook``) or of one notify channel (``slack``)."""

    @property
    def name(self) -> str: ...

    async def deliver(self, job: Job) -> Outcome: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Retries(Protocol):
    """A handler with its own retry policy (a mail relay waited out for a day, a
    verifier until the task's deadline) instead of the outbox's default."""

    def policy(self) -> RetryPolicy: ...


@runtime_checkable
class Starts(Protocol):
    """A handler with a part that runs for the server's lifetime (Slack's Socket Mode):
    started with the app, stopped by its ``aclose``."""

    async def start(self) -> None: ...


class HandlerRegistry:
    """Handlers by name. Notification routes are dispatched on their channel."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._policies: dict[str, RetryPolicy] = {}

    def register(self, handler: Handler, policy: RetryPolicy | None = None) -> None:
        """Add ``handler``; ``policy`` overrides the outbox's default retries for its jobs."""
        if handler.name in self._handlers:
            raise ValueError(f"a delivery handler named {handler.name!r} is already registered")
        self._handlers[handler.name] = handler
        if policy is not None:
            self._policies[handler.name] = policy

    def get(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def policy(self, name: str) -> RetryPolicy | None:
        """The retry policy registered with the handler ``name``, if it has its own."""
        return self._policies.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __iter__(self) -> Iterator[Handler]:
        return iter(list(self._handlers.values()))

    async def aclose(self) -> None:
        for handler in self._handlers.values():
            await handler.aclose()


async def task_by_locator(engine: AsyncEngine, locator: str) -> str | None:
    """The task whose notification a reply refers to (see :attr:`Outcome.locator`)."""
    async with engine.connect() as conn:
        found = await conn.execute(
            select(DeliveryReceiptRow.task_id)
            .where(DeliveryReceiptRow.locator == locator)
            .order_by(DeliveryReceiptRow.id.desc())
            .limit(1)
        )
        row = found.first()
    return str(row[0]) if row is not None else None
