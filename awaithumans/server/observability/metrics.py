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
``serve --workers N`` puts N processes behind one port, where a scrape reaches whichever
accepts it: there prometheus_client's multiprocess mode is used (:func:`shared_across_workers`
gives the workers one ``PROMETHEUS_MULTIPROC_DIR``), each worker's instruments write to a
file of their own in it and every scrape adds up all the files, so any worker answers for
the whole server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
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
#: prometheus_client's switch to multiprocess mode, read when it is first imported.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How often a worker writes its count of open long-polls for the others' scrapes.
POLLS_EVERY_SECONDS = 1.0

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
        # Set by the parent of `serve --workers` before this process imported
        # prometheus_client, which has then made every value a shared file.
        self._shared_dir = os.environ.get(MULTIPROCESS_ENV) or None
        self._polls_task: asyncio.Task[None] | None = None
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
        self._database = _Database(self)
        r.register(self._database)
        if self._shared_dir is None:
            r.register(_Polls(hub))
            self._polls_gauge: Gauge | None = None
        else:
            # Summed over the live workers' files; each worker writes its own count.
            self._polls_gauge = Gauge(
                "awaithumans_long_polls_open",
                _POLLS_HELP,
                registry=r,
                multiprocess_mode="livesum",
            )
        # The answer path bumps these; a labelled child found once is a dict hit less.
        self._answers_by_channel: dict[str, Counter] = {}

    @property
    def shared(self) -> bool:
        """Whether this process is one of several workers whose numbers a scrape adds up."""
        return self._shared_dir is not None

    def start(self) -> None:
        """In a worker, keep this process's count of open long-polls in its shared file."""
        if self._polls_gauge is not None and self._polls_task is None:
            self._polls_task = asyncio.create_task(
                self._write_polls(self._polls_gauge), name="awaithumans-metrics-polls"
            )

    async def stop(self) -> None:
        if self._polls_task is not None:
            self._polls_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polls_task
            self._polls_task = None
        if self._polls_gauge is not None:
            self._polls_gauge.set(0)

    async def _write_polls(self, gauge: Gauge) -> None:
        while True:
            gauge.set(self._hub.waiting)
            await asyncio.sleep(POLLS_EVERY_SECONDS)

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

    async def answer_sent(self, changed_at: float) -> None:
        """:meth:`answer_returned` as a response's background task: a coroutine, because
        Starlette runs a plain function given as one in a worker thread."""
        self.answer_returned(changed_at)

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
        """The registry in the format the scraper asked for (``Accept``), and its type.

        In a worker, every worker's files added up, and the database gauges.
        """
        encode, content_type = choose_encoder(accept or "")
        if self._shared_dir is None:
            return encode(self.registry), content_type
        everyone = CollectorRegistry()
        MultiProcessCollector(everyone, path=self._shared_dir)  # type: ignore[no-untyped-call]
        everyone.register(self._database)
        return encode(everyone), content_type

    @property
    def facts(self) -> DatabaseFacts | None:
        return self._cache.facts


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


_POLLS_HELP = "Long-polls (waiting SDK calls) parked on this server now."


class _Polls(Collector):
    """Open long-polls, counted when ``/metrics`` is rendered (one process)."""

    def __init__(self, hub: TaskHub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("awaithumans_long_polls_open", _POLLS_HELP, value=self._hub.waiting)


class _Database(Collector):
    """The database's gauges, as the last :meth:`Metrics.refresh` read them."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
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


@contextlib.contextmanager
def shared_across_workers() -> Iterator[None]:
    """Around starting ``serve --workers``: one fresh folder for the workers' metric files.

    Set in the environment the workers inherit (they are new interpreters, which import
    prometheus_client after it is set), removed when the server stops. A folder the
    operator chose (``PROMETHEUS_MULTIPROC_DIR`` already set) is used as it is: they then
    empty it between runs, as prometheus_client asks.
    """
    if os.environ.get(MULTIPROCESS_ENV):
        yield
        return
    folder = tempfile.mkdtemp(prefix="awaithumans-metrics-")  # 0700
    os.environ[MULTIPROCESS_ENV] = folder
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)
