"""Sign-in throttling and the per-address doors, with an injected clock."""

from __future__ import annotations

import tracemalloc

import pytest

from awaithumans.server.security import Door, DoorLimits, LoginThrottle
from awaithumans.server.security.buckets import LeakyBuckets, RecentKeys, bucket_key
from awaithumans.server.security.ratelimit import in_words, retry_after_seconds


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(now=clock)


def fail(throttle: LoginThrottle, ip: str, email: str, times: int) -> None:
    """``times`` wrong passwords: each attempt allowed, and left counted as a failure."""
    for _ in range(times):
        assert throttle.attempt(ip, email) is None


def test_five_failures_block_that_address_and_account(throttle: LoginThrottle) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 5)
    wait = throttle.attempt("10.0.0.1", "ann@example.com")
    assert wait == pytest.approx(60.0)  # 5 per 300 s drains one a minute
    # The refused attempt was not counted: the wait stays the same.
    assert throttle.attempt("10.0.0.1", "ann@example.com") == pytest.approx(60.0)


def test_email_is_normalised(throttle: LoginThrottle) -> None:
    fail(throttle, "10.0.0.1", "Ann@Example.com ", 5)
    assert throttle.attempt("10.0.0.1", "ann@example.com") is not None


def test_other_address_and_other_email_unaffected(throttle: LoginThrottle) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 5)
    assert throttle.attempt("10.0.0.2", "ann@example.com") is None
    assert throttle.attempt("10.0.0.1", "bob@example.com") is None


def test_success_refunds_and_resets_the_account(throttle: LoginThrottle) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 4)
    assert throttle.attempt("10.0.0.1", "ann@example.com") is None
    throttle.record_success("10.0.0.1", "ann@example.com")
    fail(throttle, "10.0.0.1", "ann@example.com", 5)
    assert throttle.attempt("10.0.0.1", "ann@example.com") is not None


def test_decay(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 5)
    clock.advance(59)
    assert throttle.attempt("10.0.0.1", "ann@example.com") == pytest.approx(1.0)
    clock.advance(1)
    # One attempt has drained away; failing it blocks again for a minute.
    fail(throttle, "10.0.0.1", "ann@example.com", 1)
    assert throttle.attempt("10.0.0.1", "ann@example.com") == pytest.approx(60.0)
    clock.advance(300)
    fail(throttle, "10.0.0.1", "ann@example.com", 5)
    assert throttle.attempt("10.0.0.1", "ann@example.com") is not None


def test_per_account_cap_across_addresses(throttle: LoginThrottle, clock: Clock) -> None:
    # A signed-in address first: it stays exempt from the account bucket.
    assert throttle.attempt("192.0.2.50", "ann@example.com") is None
    throttle.record_success("192.0.2.50", "ann@example.com")
    for index in range(20):
        fail(throttle, f"10.0.1.{index}", "ann@example.com", 1)
    wait = throttle.attempt("10.0.2.1", "ann@example.com")
    assert wait == pytest.approx(180.0)  # 20 per 3600 s drains one every 3 minutes
    assert throttle.attempt("10.0.2.1", "bob@example.com") is None
    # The owner's usual address still signs in, and the success resets the account.
    assert throttle.attempt("192.0.2.50", "ann@example.com") is None
    throttle.record_success("192.0.2.50", "ann@example.com")
    assert throttle.attempt("10.0.2.1", "ann@example.com") is None


def test_the_known_address_exemption_expires(throttle: LoginThrottle, clock: Clock) -> None:
    assert throttle.attempt("192.0.2.50", "ann@example.com") is None
    throttle.record_success("192.0.2.50", "ann@example.com")
    clock.advance(31 * 24 * 3600)
    for index in range(20):
        fail(throttle, f"10.0.1.{index}", "ann@example.com", 1)
    assert throttle.attempt("192.0.2.50", "ann@example.com") is not None


def test_per_address_cap_across_accounts(throttle: LoginThrottle, clock: Clock) -> None:
    for index in range(30):
        fail(throttle, "10.0.0.9", f"user{index}@example.com", 1)
    wait = throttle.attempt("10.0.0.9", "someone-new@example.com")
    assert wait == pytest.approx(20.0)  # 30 per 600 s drains one every 20 s
    assert throttle.attempt("10.0.0.10", "someone-new@example.com") is None
    clock.advance(20)
    # Signing into one account there does not reset the address's overall budget.
    assert throttle.attempt("10.0.0.9", "user0@example.com") is None
    throttle.record_success("10.0.0.9", "user0@example.com")
    assert throttle.attempt("10.0.0.9", "someone-new@example.com") is None
    assert throttle.attempt("10.0.0.9", "someone-else@example.com") is not None


def test_ipv6_grouped_by_64(throttle: LoginThrottle) -> None:
    fail(throttle, "2001:db8:1:2::1", "ann@example.com", 5)
    assert throttle.attempt("2001:db8:1:2::ffff", "ann@example.com") is not None
    assert throttle.attempt("2001:db8:1:3::1", "ann@example.com") is None


def test_ipv4_mapped_ipv6_matches_ipv4(throttle: LoginThrottle) -> None:
    fail(throttle, "::ffff:10.0.0.1", "ann@example.com", 5)
    assert throttle.attempt("10.0.0.1", "ann@example.com") is not None


def test_non_ip_client_strings_work(throttle: LoginThrottle) -> None:
    fail(throttle, "testclient", "ann@example.com", 5)
    assert throttle.attempt("testclient", "ann@example.com") is not None


def test_old_entries_are_pruned(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 3)
    assert throttle.tracked_keys == 3  # the pair, the account, the address
    clock.advance(3601)
    fail(throttle, "10.0.0.2", "bob@example.com", 1)
    assert throttle.tracked_keys == 3  # only bob's entries remain
    clock.advance(3601)
    throttle.prune()
    assert throttle.tracked_keys == 0


def test_memory_cap_evicts_oldest(clock: Clock) -> None:
    throttle = LoginThrottle(max_keys=100, now=clock)
    fail(throttle, "192.0.2.1", "ann@example.com", 5)
    assert throttle.attempt("192.0.2.1", "ann@example.com") is not None
    for index in range(1000):
        ip = f"10.0.{index // 256}.{index % 256}"
        assert throttle.attempt(ip, f"u{index}@example.com") is None
        if index % 2:
            throttle.record_success(ip, f"u{index}@example.com")
    # 100 per table at most: pairs, accounts, addresses, known pairs.
    assert throttle.tracked_keys <= 400
    # The oldest entries went first: the early block is forgotten...
    assert throttle.attempt("192.0.2.1", "ann@example.com") is None
    # ...while the newest are still counted.
    fail(throttle, "10.0.3.230", "u998@example.com", 4)
    assert throttle.attempt("10.0.3.230", "u998@example.com") is not None


def test_doors_count_every_request_per_address(clock: Clock) -> None:
    doors = DoorLimits(
        {Door.SETUP: (3, 60.0), Door.HANDOFF: (2, 10.0), Door.ONE_CLICK: (1, 5.0)}, now=clock
    )
    assert [doors.hit(Door.SETUP, "10.0.0.1") for _ in range(3)] == [None] * 3
    assert doors.hit(Door.SETUP, "10.0.0.1") == pytest.approx(20.0)
    # Other doors and other addresses have their own counts.
    assert doors.hit(Door.HANDOFF, "10.0.0.1") is None
    assert doors.hit(Door.SETUP, "10.0.0.2") is None
    clock.advance(20)
    assert doors.hit(Door.SETUP, "10.0.0.1") is None
    assert doors.hit(Door.SETUP, "10.0.0.1") is not None


def test_doors_memory_is_bounded(clock: Clock) -> None:
    doors = DoorLimits(dict.fromkeys(Door, (5, 60.0)), max_keys=100, now=clock)
    for index in range(5000):
        doors.hit(Door.ONE_CLICK, f"10.{index // 65536}.{index // 256 % 256}.{index % 256}")
    assert doors.tracked_keys == 100


def test_a_full_table_costs_about_320_bytes_an_entry(clock: Clock) -> None:
    # The figure rate_limit_max_keys' description gives (45 MB for 7 tables of 20,000).
    doors = DoorLimits(dict.fromkeys(Door, (5, 60.0)), max_keys=5000, now=clock)
    addresses = [f"2001:db8:{n // 65536:x}:{n % 65536:x}::1" for n in range(10_000)]
    tracemalloc.start()
    try:
        for address in addresses:
            doors.hit(Door.HANDOFF, address)
        used, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert doors.tracked_keys == 5000
    assert used / 5000 < 400


def test_refunds_never_go_below_empty() -> None:
    buckets = LeakyBuckets(3, 30.0, 10)
    buckets.add("k", 0.0, -1.0)
    assert buckets.retry_after("k", 0.0) is None
    for _ in range(3):
        buckets.add("k", 0.0)
    assert buckets.retry_after("k", 0.0) == pytest.approx(10.0)


def test_recent_keys_expire_and_are_capped() -> None:
    recent = RecentKeys(10.0, 3)
    for index in range(5):
        recent.mark(index, float(index))
    assert len(recent) == 3
    assert not recent.holds(0, 5.0)
    assert recent.holds(4, 13.9)
    assert not recent.holds(4, 14.0)


def test_bucket_keys() -> None:
    assert bucket_key("2001:db8::1") == "2001:db8::/64"
    assert bucket_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert bucket_key("unknown") == "unknown"


def test_retry_after_in_whole_seconds_and_words() -> None:
    assert retry_after_seconds(0.01) == 1
    assert retry_after_seconds(60.0) == 60
    assert retry_after_seconds(60.2) == 61
    assert in_words(1) == "in 1 second"
    assert in_words(45) == "in 45 seconds"
    assert in_words(180) == "in 3 minutes"


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoginThrottle(per_account_address=(0, 60.0))
    with pytest.raises(ValueError, match="positive"):
        LoginThrottle(max_keys=0)
    with pytest.raises(ValueError, match="positive"):
        RecentKeys(0, 1)
