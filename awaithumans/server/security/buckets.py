"""Bounded per-key counters for the rate limits (:mod:`.ratelimit`).

Both tables keep their entries in order of last update, so expired ones are pruned from the
front and, at the size cap, the least recently updated are evicted first: whatever keys an
attacker sprays, a table never holds more than ``max_keys`` entries. Not thread-safe on
their own; :mod:`.ratelimit` holds a lock around them.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Hashable


class LeakyBuckets:
    """Levels per key that drain at ``limit / window`` per second.

    A key is refused once its level reaches ``limit``. A leaky bucket (a level that decays
    continuously) rather than a fixed window needs one number per key, and after a burst it
    reopens one attempt at a time instead of all at once. The level is capped at ``limit``,
    so every entry is empty again at most ``window`` seconds after its last update; that is
    what makes front-pruning exact.
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

    def add(self, key: Hashable, now: float, amount: float = 1.0) -> bool:
        """Raise the level by ``amount`` (a negative one refunds); whether it is now full
        (the next attempt would be refused)."""
        level = min(float(self.limit), max(0.0, self._level(key, now) + amount))
        self._entries[key] = (level, now)
        self._entries.move_to_end(key)
        self.prune(now)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
        return level - (self.limit - 1) > 1e-9

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


class RecentKeys:
    """Keys marked within the last ``ttl`` seconds."""

    def __init__(self, ttl: float, max_keys: int) -> None:
        if ttl <= 0 or max_keys < 1:
            raise ValueError("ttl and max_keys must be positive")
        self.ttl = ttl
        self.max_keys = max_keys
        self._marked: OrderedDict[Hashable, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._marked)

    def holds(self, key: Hashable, now: float) -> bool:
        marked = self._marked.get(key)
        return marked is not None and marked > now - self.ttl

    def mark(self, key: Hashable, now: float) -> None:
        self._marked[key] = now
        self._marked.move_to_end(key)
        self.prune(now)
        while len(self._marked) > self.max_keys:
            self._marked.popitem(last=False)

    def prune(self, now: float) -> None:
        horizon = now - self.ttl
        while self._marked and next(iter(self._marked.values())) <= horizon:
            self._marked.popitem(last=False)


def bucket_key(address: str) -> str:
    """The key an address is counted under: IPv6 by its /64 (one host usually holds a
    whole /64 and could rotate through it for free), IPv4-mapped IPv6 as the IPv4
    address, anything that is not an address (a test client's placeholder) as itself."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
