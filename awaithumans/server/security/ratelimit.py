"""In-memory rate limits: sign-in failures, and the setup, handoff and one-click doors.

Sign-in failures are counted in three buckets (defaults; each is a setting):

* per ``(client address, account)``: 5 per 5 minutes. Guessing one account from one
  address is held to that pace.
* per account, across addresses: 20 per hour, so spreading the guesses at one account over
  many addresses does not multiply them. An address the account signed in from in the last
  30 days is exempt from this one bucket (the two others still apply): otherwise anyone who
  knows an email could keep its owner out by failing on purpose from a few addresses, and
  the owner's usual address is the one that must keep working.
* per client address, across accounts: 30 per 10 minutes, so one address cannot spray
  guesses over many accounts.

A success clears the account's two buckets but not the address's: an attacker holding one
valid account could otherwise sign into it between guesses at the others. An attempt is
counted as a failure *before* the password is checked and refunded when it was right:
counted after the check, a burst of parallel requests would all pass the check before the
first failure was recorded.

The setup page, handoff links and one-click answer links (:class:`Door`) are counted per
address, every request alike: a valid link replayed still costs a database read and, for a
handoff, a new session. Their defaults are generous enough for an office behind one address.

Buckets are leaky (:mod:`.buckets`), keyed by :func:`.buckets.bucket_key` (IPv6 by /64), and
each table is capped at ``max_keys`` entries. Everything lives in this process only: with
several replicas each applies the limits on its own, which multiplies them by the number of
replicas but still bounds the rate; a later change moves the counters to PostgreSQL.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from awaithumans.core._codes import ErrorCode
from awaithumans.server.errors import ApiError
from awaithumans.server.security.buckets import LeakyBuckets, RecentKeys, bucket_key
from awaithumans.server.settings import Settings

log = logging.getLogger("awaithumans.server.security")

#: A rate limit as the settings hold it: at most COUNT within SECONDS.
Limit = tuple[int, float]

DEFAULT_MAX_KEYS: Final = 20_000
#: How long a successful sign-in exempts its (address, account) from the account bucket.
KNOWN_ADDRESS_SECONDS: Final = 30 * 24 * 3600.0


def retry_after_seconds(wait: float) -> int:
    """A wait as the whole seconds of a ``Retry-After`` header (at least 1)."""
    return max(1, math.ceil(wait - 1e-9))


def in_words(seconds: int) -> str:
    """``"in 40 seconds"``, ``"in 3 minutes"``: when to retry, for people."""
    if seconds < 90:
        return f"in {seconds} second{'' if seconds == 1 else 's'}"
    return f"in {math.ceil(seconds / 60)} minutes"


def too_many(wait: float, what: str) -> ApiError:
    """The 429 for a refused attempt: ``what`` happened, when to retry, and ``Retry-After``.

    The API answers it as JSON; the dashboard shows its message on the page it refuses.
    """
    seconds = retry_after_seconds(wait)
    return ApiError(
        429,
        ErrorCode.RATE_LIMITED,
        f"{what}; try again {in_words(seconds)}.",
        headers={"Retry-After": str(seconds)},
    )


def _account(email: str) -> str:
    # Same normalisation for every attempt, so "Ann@X.org " and "ann@x.org" share a bucket.
    return email.strip().casefold()


class LoginThrottle:
    """Sign-in failures per (address, account), per account and per address.

    Usage: :meth:`attempt` first, and answer 429 with ``Retry-After`` if it returns a
    number (without checking the password); otherwise check the password, and call
    :meth:`record_success` if it was right (the attempt already counts as a failure).
    Thread-safe.
    """

    def __init__(
        self,
        *,
        per_account_address: Limit = (5, 300.0),
        per_account: Limit = (20, 3600.0),
        per_address: Limit = (30, 600.0),
        max_keys: int = DEFAULT_MAX_KEYS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a throttle.

        Args:
            per_account_address: Failures allowed per (address, account), and the seconds
                over which they drain away.
            per_account: Failures allowed per account, from addresses it has not signed in
                from lately.
            per_address: Failures allowed per address, across accounts.
            max_keys: Most entries each table keeps; the least recently updated are evicted
                beyond it, bounding memory whatever an attacker sends.
            now: Clock in seconds; monotonic by default, injectable for tests.
        """
        self._pairs = LeakyBuckets(*per_account_address, max_keys)
        self._accounts = LeakyBuckets(*per_account, max_keys)
        self._addresses = LeakyBuckets(*per_address, max_keys)
        self._known = RecentKeys(KNOWN_ADDRESS_SECONDS, max_keys)
        self._now = now
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginThrottle:
        return cls(
            per_account_address=settings.login_limit_per_account_address,
            per_account=settings.login_limit_per_account,
            per_address=settings.login_limit_per_address,
            max_keys=settings.rate_limit_max_keys,
        )

    def attempt(self, ip: str, email: str) -> float | None:
        """Start a sign-in attempt by ``ip`` (the client address) as ``email``.

        Returns:
            None: go ahead; the attempt is counted as a failure until
            :meth:`record_success`. A number: the seconds to wait; nothing was counted.
        """
        address = bucket_key(ip)
        account = _account(email)
        pair = (address, account)
        with self._lock:
            now = self._now()
            waits = [
                self._pairs.retry_after(pair, now),
                self._addresses.retry_after(address, now),
            ]
            if not self._known.holds(pair, now):
                waits.append(self._accounts.retry_after(account, now))
            found = [wait for wait in waits if wait is not None]
            if found:
                return max(found)
            self._pairs.add(pair, now)
            account_full = self._accounts.add(account, now)
            address_full = self._addresses.add(address, now)
        # Once per filling, not per refusal: a flood of refused attempts logs nothing more.
        if account_full:
            log.warning("sign-in attempts for %s reached the account's limit", account)
        if address_full:
            log.warning("sign-in attempts from %s reached the address's limit", address)
        return None

    def record_success(self, ip: str, email: str) -> None:
        """The password was right: refund the attempt, reset the account's counts, and
        exempt this address from the account bucket for a while."""
        address = bucket_key(ip)
        account = _account(email)
        pair = (address, account)
        with self._lock:
            now = self._now()
            self._pairs.clear(pair)
            self._accounts.clear(account)
            self._addresses.add(address, now, -1.0)
            self._known.mark(pair, now)

    def prune(self) -> None:
        """Drop fully drained entries now (also done on every recorded attempt)."""
        with self._lock:
            now = self._now()
            for table in (self._pairs, self._accounts, self._addresses, self._known):
                table.prune(now)

    @property
    def tracked_keys(self) -> int:
        """Entries currently held (all tables), for metrics and tests."""
        with self._lock:
            tables = (self._pairs, self._accounts, self._addresses, self._known)
            return sum(len(table) for table in tables)


class Door(enum.StrEnum):
    """The doors limited per address, every request counted."""

    SETUP = "setup"
    HANDOFF = "handoff"
    ONE_CLICK = "one-click"


class DoorLimits:
    """Requests per client address at each :class:`Door`. Thread-safe."""

    def __init__(
        self,
        limits: Mapping[Door, Limit],
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the limits: for each door, requests allowed and the seconds they take to
        drain; at most ``max_keys`` addresses remembered per door."""
        self._doors = {door: LeakyBuckets(*limits[door], max_keys) for door in Door}
        self._now = now
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DoorLimits:
        limits = {
            Door.SETUP: settings.setup_limit_per_address,
            Door.HANDOFF: settings.handoff_limit_per_address,
            Door.ONE_CLICK: settings.one_click_limit_per_address,
        }
        return cls(limits, max_keys=settings.rate_limit_max_keys)

    def hit(self, door: Door, ip: str) -> float | None:
        """Count a request by ``ip`` at ``door``.

        Returns:
            None: go ahead (the request was counted). A number: the seconds to wait; the
            refused request is not counted, so waiting that long is always enough.
        """
        address = bucket_key(ip)
        buckets = self._doors[door]
        with self._lock:
            now = self._now()
            wait = buckets.retry_after(address, now)
            if wait is not None:
                return wait
            full = buckets.add(address, now)
        if full:
            log.warning("%s requests from %s are being limited", door, address)
        return None

    @property
    def tracked_keys(self) -> int:
        """Addresses currently held (all doors), for metrics and tests."""
        with self._lock:
            return sum(len(buckets) for buckets in self._doors.values())
