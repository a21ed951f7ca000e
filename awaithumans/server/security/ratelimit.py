"""In-memory login throttling that slows password guessing without locking users out.

Failures are counted in two leaky buckets:

* per ``(client address, normalised email)``: by default 5 failures, draining one per minute
  (5 per 5 minutes). Guessing one account from one address is held to that pace, but the
  same account can still be used from any other address, so an attacker cannot lock a
  victim out by failing on purpose.
* per client address, across all emails: by default 30 failures per 10 minutes, so one
  address cannot spray guesses over many accounts.

A leaky bucket (a level that decays continuously) is used instead of a fixed window: it needs
one number per key, and after a burst it reopens one attempt at a time instead of all at once.

IPv6 clients are grouped by /64, since one host usually controls a whole /64 and could
otherwise rotate through addresses for free. State lives in this process only; with several
server processes each throttles on its own, which still bounds the guessing rate.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

DEFAULT_MAX_KEYS: Final = 100_000


class _LeakyBuckets:
    """Failure levels per key that drain at ``limit / window`` per second.

    A key is refused once its level reaches ``limit``. Entries are kept in order of last
    update so that stale ones can be pruned from the front and, at the size cap, the oldest
    evicted first. The level is capped at ``limit``, so every entry is empty again at most
    ``window`` seconds after its last update; that is what makes front-pruning exact.
    """

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._drain_per_second = limit / window
        # key -> (level at `updated`, updated)
        self._entries: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _level(self, key: Hashable, now: float) -> float:
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        level, updated = entry
        return max(0.0, level - (now - updated) * self._drain_per_second)

    def retry_after(self, key: Hashable, now: float) -> float | None:
        """Seconds until one more attempt is allowed for ``key``, or None if allowed now."""
        excess = self._level(key, now) - (self.limit - 1)
        # The tolerance absorbs float rounding right at the boundary.
        if excess <= 1e-9:
            return None
        return excess / self._drain_per_second

    def add(self, key: Hashable, now: float) -> None:
        level = min(float(self.limit), self._level(key, now) + 1.0)
        self._entries[key] = (level, now)
        self._entries.move_to_end(key)
        self.prune(now)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def clear(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def prune(self, now: float) -> None:
        """Drop entries that have fully drained; cheap because they sit at the front."""
        horizon = now - self.window
        while self._entries:
            _, (_, updated) = next(iter(self._entries.items()))
            if updated > horizon:
                break
            self._entries.popitem(last=False)


def _client_key(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        # Not an address (e.g. a test client's placeholder): throttle the raw string.
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _normalize_email(email: str) -> str:
    # Same normalisation for every attempt, so "Ann@X.org " and "ann@x.org" share a bucket.
    return email.strip().casefold()


class LoginThrottle:
    """Throttles failed logins per (client, email) and per client.

    Usage in a login handler: call :meth:`check` first and answer 429 with ``Retry-After``
    if it returns a number (without checking the password); otherwise verify the password and
    call :meth:`record_failure` or :meth:`record_success`. All methods are thread-safe.
    """

    def __init__(
        self,
        *,
        per_key_limit: int = 5,
        per_key_window: float = 300.0,
        per_ip_limit: int = 30,
        per_ip_window: float = 600.0,
        max_keys: int = DEFAULT_MAX_KEYS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a throttle.

        Args:
            per_key_limit: Failures allowed per (client, email) within ``per_key_window``.
            per_key_window: Seconds over which that many failures drain away.
            per_ip_limit: Failures allowed per client across all emails.
            per_ip_window: Seconds over which those drain away.
            max_keys: Most entries kept in each table; the least recently updated are
                evicted beyond it, bounding memory whatever an attacker sends.
            now: Clock in seconds; monotonic by default, injectable for tests.
        """
        self._pairs = _LeakyBuckets(per_key_limit, per_key_window, max_keys)
        self._clients = _LeakyBuckets(per_ip_limit, per_ip_window, max_keys)
        self._now = now
        self._lock = threading.Lock()

    def check(self, ip: str, email: str) -> float | None:
        """Tell whether a login attempt may proceed.

        Args:
            ip: The client address.
            email: The email the client is trying to log in as.

        Returns:
            None if the attempt is allowed, otherwise the seconds to wait before retrying.
        """
        client = _client_key(ip)
        pair = (client, _normalize_email(email))
        with self._lock:
            now = self._now()
            pair_wait = self._pairs.retry_after(pair, now)
            client_wait = self._clients.retry_after(client, now)
        waits = [wait for wait in (pair_wait, client_wait) if wait is not None]
        return max(waits) if waits else None

    def record_failure(self, ip: str, email: str) -> None:
        """Count a failed login (wrong password or unknown email alike).

        Args:
            ip: The client address.
            email: The email that was tried.
        """
        client = _client_key(ip)
        pair = (client, _normalize_email(email))
        with self._lock:
            now = self._now()
            self._pairs.add(pair, now)
            self._clients.add(client, now)

    def record_success(self, ip: str, email: str) -> None:
        """Forget the failures of this (client, email) after a successful login.

        The per-client count is deliberately kept: otherwise an attacker holding one valid
        account could log into it between guesses to reset their budget for all the others.

        Args:
            ip: The client address.
            email: The email that logged in.
        """
        pair = (_client_key(ip), _normalize_email(email))
        with self._lock:
            self._pairs.clear(pair)

    def prune(self) -> None:
        """Drop fully drained entries now (also done on every recorded failure)."""
        with self._lock:
            now = self._now()
            self._pairs.prune(now)
            self._clients.prune(now)

    @property
    def tracked_keys(self) -> int:
        """Entries currently held (both tables), for metrics and tests."""
        with self._lock:
            return len(self._pairs) + len(self._clients)
