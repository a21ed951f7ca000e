"""The Prometheus metrics of one app, in a registry of its own.

``create_app`` may run many times in one process (the tests do), so nothing goes into
prometheus_client's global default registry: each :class:`Metrics` owns a
``CollectorRegistry`` and ``GET /metrics`` renders that one.

Two kinds of numbers:

- **Counted where they happen**, for the cost of an increment (~100 ns) and never a query:
  creates, answers, deliveries, the answer-to-return latency, verifier calls.
- **Read at scrape time**: long-polls open (the hub's count), and from the database tasks by
  status (one ``GROUP BY``) and the outbox's due rows and lag (one aggregate on the
  ``ix_outbox_due`` partial index). The database answers are cached for
  :data:`SCRAPE_CACHE_SECONDS`, so several Prometheus servers scraping every second cost
  one query each time the cache runs out, and a request path never waits on them.

Counters and histograms are per process. With several replicas, Prometheus scrapes each one
(its own target) and sums; the database gauges are the same on every replica (take ``max``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.core._wire import TaskStatus
from awaithumans.server.db.models import OutboxRow, TaskRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.services.hub import TaskHub

log = logging.getLogger("awaithumans.server.metrics")

#: How long a scrape reuses the database's numbers before reading them again.
SCRAPE_CACHE_SECONDS = 2.0

# An answer reaches a waiting poll in a few milliseconds on one process and in tens across
# replicas (the target is p99 < 50 ms): fine buckets there, coarse above.
ANSWER_RETURN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# A model call takes from a fraction of a second to the verifier timeout (60 s by default).
VERIFIER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True, slots=True)
class DatabaseFacts:
    """What one scrape read from the database."""

    tasks_by_status: dict[str, int]
    outbox_due: int
    #: Age of the oldest due pending outbox row, 0 when none is due.
    outbox_lag_seconds: float


@dataclass(slots=True)
class _Cache:
    facts: DatabaseFacts | None = None
    #: When the database was last asked (monotonic), whether or not it answered.
    read_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Metrics:
    """The instruments of one server process and the registry ``/metrics`` renders."""

    def __init__(self, hub: TaskHub) -> None:
        self.registry = CollectorRegistry()
        self._hub = hub
        self._cache = _Cache()
        r = self.registry
        self.creates = Counter(
            "awaithumans_task_creates",
            "Tasks created (an idempotent replay of a create is not counted).",
            registry=r,
        )
        self.answers = Counter(
            "awaithumans_answers",
            "Answers accepted (completed, or submitted for verification), by channel.",
            ["channel"],
            registry=r,
        )
        self.answer_return = Histogram(
            "awaithumans_answer_return_seconds",
            "From the commit that ends a task (as this process learns of it) to the response"
            " of a long-poll that was waiting on it being sent.",
            buckets=ANSWER_RETURN_BUCKETS,
            registry=r,
        )
        self.outbox_delivered = Counter(
            "awaithumans_outbox_delivered",
            "Outbox jobs delivered, by job kind and channel.",
            ["kind", "channel"],
            registry=r,
        )
        self.outbox_failures = Counter(
            "awaithumans_outbox_failures",
            "Failed outbox delivery attempts, by job kind and channel; final=true when the"
            " job will not be tried again.",
            ["kind", "channel", "final"],
            registry=r,
        )
        self.verifier_seconds = Histogram(
            "awaithumans_verifier_call_seconds",
            "Time of each verifier model call, by provider and result (verdict, error, timeout).",
            ["provider", "result"],
            buckets=VERIFIER_BUCKETS,
            registry=r,
        )
        r.register(_ScrapeTime(self))
        # The answer path bumps these; a labelled child found once is a dict hit less.
        self._answers_by_channel: dict[str, Counter] = {}

    # -- counted where it happens ------------------------------------------------------------

    def task_created(self) -> None:
        self.creates.inc()

    def task_answered(self, channel: str) -> None:
        child = self._answers_by_channel.get(channel)
        if child is None:
            child = self._answers_by_channel[channel] = self.answers.labels(channel)
        child.inc()

    def answer_returned(self, changed_at: float) -> None:
        """A long-poll woken by a task's ending has sent its response.

        Args:
            changed_at: ``time.monotonic()`` when the hub heard of the change.
        """
        self.answer_return.observe(max(0.0, time.monotonic() - changed_at))

    def delivery(
        self, kind: str, channel: str, *, delivered: bool, skipped: bool, final: bool
    ) -> None:
        """Book one outbox attempt's outcome (a skip is neither a delivery nor a failure)."""
        if delivered:
            self.outbox_delivered.labels(kind, channel).inc()
        elif not skipped:
            self.outbox_failures.labels(kind, channel, "true" if final else "false").inc()

    def verifier_call(self, provider: str, result: str, seconds: float) -> None:
        self.verifier_seconds.labels(provider, result).observe(seconds)

    # -- read at scrape time -----------------------------------------------------------------

    async def refresh(self, engine: AsyncEngine) -> None:
        """Read the database's numbers unless the last read is recent enough.

        Concurrent scrapes share one read. A database that does not answer leaves its
        gauges out of the scrape and ``awaithumans_database_up`` at 0.
        """
        cache = self._cache
        if time.monotonic() - cache.read_at < SCRAPE_CACHE_SECONDS:
            return
        async with cache.lock:
            if time.monotonic() - cache.read_at < SCRAPE_CACHE_SECONDS:
                return
            try:
                cache.facts = await read_facts(engine)
            except Exception as exc:
                log.warning("metrics: the database did not answer: %s", exc)
                cache.facts = None
            cache.read_at = time.monotonic()

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (``Accept``), and its type."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type

    @property
    def facts(self) -> DatabaseFacts | None:
        return self._cache.facts

    @property
    def hub(self) -> TaskHub:
        return self._hub


async def read_facts(engine: AsyncEngine) -> DatabaseFacts:
    """Tasks by status and the outbox's due rows, in two aggregate queries."""
    now = utcnow()
    async with engine.connect() as conn:
        counted = await conn.execute(select(TaskRow.status, func.count()).group_by(TaskRow.status))
        by_status = {str(status): int(n) for status, n in counted.all()}
        due = (
            await conn.execute(
                select(func.count(), func.min(OutboxRow.next_attempt_at)).where(
                    OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now
                )
            )
        ).one()
    count, oldest = int(due[0]), due[1]
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return DatabaseFacts(by_status, count, lag)


class _ScrapeTime(Collector):
    """The gauges computed when ``/metrics`` is rendered (after :meth:`Metrics.refresh`)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "awaithumans_long_polls_open",
            "Long-polls (waiting SDK calls) parked on this process now.",
            value=self._metrics.hub.waiting,
        )
        facts = self._metrics.facts
        yield GaugeMetricFamily(
            "awaithumans_database_up",
            "1 when the last scrape's database read succeeded, else 0.",
            value=0 if facts is None else 1,
        )
        if facts is None:
            return
        tasks = GaugeMetricFamily(
            "awaithumans_tasks", "Tasks in the database, by status.", labels=["status"]
        )
        for status in TaskStatus:
            tasks.add_metric([status.value], facts.tasks_by_status.get(status.value, 0))
        yield tasks
        yield GaugeMetricFamily(
            "awaithumans_outbox_due",
            "Outbox jobs due now and not yet delivered (pending, next attempt in the past).",
            value=facts.outbox_due,
        )
        yield GaugeMetricFamily(
            "awaithumans_outbox_lag_seconds",
            "Age of the oldest due outbox job (how late deliveries run); 0 when none is due.",
            value=facts.outbox_lag_seconds,
        )
