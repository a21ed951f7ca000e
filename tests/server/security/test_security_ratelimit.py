"""Login throttling with an injected clock."""

from __future__ import annotations

import pytest

from awaithumans.server.security import LoginThrottle


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
    for _ in range(times):
        assert throttle.check(ip, email) is None
        throttle.record_failure(ip, email)


def test_five_failures_block_that_key(throttle: LoginThrottle) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 4)
    assert throttle.check("10.0.0.1", "ann@example.com") is None
    throttle.record_failure("10.0.0.1", "ann@example.com")
    wait = throttle.check("10.0.0.1", "ann@example.com")
    assert wait == pytest.approx(60.0)


def test_email_is_normalised(throttle: LoginThrottle) -> None:
    fail(throttle, "10.0.0.1", "Ann@Example.com ", 5)
    assert throttle.check("10.0.0.1", "ann@example.com") is not None


def test_other_ip_and_other_email_unaffected(throttle: LoginThrottle) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 5)
    assert throttle.check("10.0.0.1", "ann@example.com") is not None
    assert throttle.check("10.0.0.2", "ann@example.com") is None
    assert throttle.check("10.0.0.1", "bob@example.com") is None


def test_success_clears_the_key(throttle: LoginThrottle) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 4)
    throttle.record_success("10.0.0.1", "ann@example.com")
    fail(throttle, "10.0.0.1", "ann@example.com", 4)
    assert throttle.check("10.0.0.1", "ann@example.com") is None


def test_decay(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 5)
    clock.advance(59)
    assert throttle.check("10.0.0.1", "ann@example.com") == pytest.approx(1.0)
    clock.advance(1)
    # One attempt has drained away; failing it blocks again for a minute.
    fail(throttle, "10.0.0.1", "ann@example.com", 1)
    assert throttle.check("10.0.0.1", "ann@example.com") == pytest.approx(60.0)
    clock.advance(300)
    # After a full window everything has drained: five fresh attempts.
    fail(throttle, "10.0.0.1", "ann@example.com", 5)
    assert throttle.check("10.0.0.1", "ann@example.com") is not None


def test_per_ip_cap_across_emails(throttle: LoginThrottle, clock: Clock) -> None:
    for index in range(30):
        fail(throttle, "10.0.0.9", f"user{index}@example.com", 1)
    wait = throttle.check("10.0.0.9", "someone-new@example.com")
    assert wait == pytest.approx(20.0)  # 30 per 600 s drains one every 20 s
    assert throttle.check("10.0.0.10", "someone-new@example.com") is None
    # A success for one email does not reset the address's overall budget.
    throttle.record_success("10.0.0.9", "user0@example.com")
    assert throttle.check("10.0.0.9", "user0@example.com") is not None
    clock.advance(20)
    assert throttle.check("10.0.0.9", "someone-new@example.com") is None


def test_ipv6_grouped_by_64(throttle: LoginThrottle) -> None:
    fail(throttle, "2001:db8:1:2::1", "ann@example.com", 5)
    assert throttle.check("2001:db8:1:2::ffff", "ann@example.com") is not None
    assert throttle.check("2001:db8:1:3::1", "ann@example.com") is None


def test_ipv4_mapped_ipv6_matches_ipv4(throttle: LoginThrottle) -> None:
    fail(throttle, "::ffff:10.0.0.1", "ann@example.com", 5)
    assert throttle.check("10.0.0.1", "ann@example.com") is not None


def test_non_ip_client_strings_work(throttle: LoginThrottle) -> None:
    fail(throttle, "testclient", "ann@example.com", 5)
    assert throttle.check("testclient", "ann@example.com") is not None


def test_old_entries_are_pruned(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, "10.0.0.1", "ann@example.com", 3)
    assert throttle.tracked_keys == 2
    clock.advance(601)
    throttle.record_failure("10.0.0.2", "bob@example.com")
    assert throttle.tracked_keys == 2  # only bob's entries remain
    clock.advance(601)
    throttle.prune()
    assert throttle.tracked_keys == 0


def test_memory_cap_evicts_oldest(clock: Clock) -> None:
    throttle = LoginThrottle(max_keys=100, now=clock)
    fail(throttle, "192.0.2.1", "ann@example.com", 5)
    assert throttle.check("192.0.2.1", "ann@example.com") is not None
    for index in range(1000):
        throttle.record_failure(f"10.0.{index // 256}.{index % 256}", "ann@example.com")
    assert throttle.tracked_keys == 200  # 100 pairs + 100 addresses, never more
    # The oldest entries went first: the early block is forgotten...
    assert throttle.check("192.0.2.1", "ann@example.com") is None
    # ...while the newest (index 999) are still counted.
    newest = "10.0.3.231"
    for _ in range(4):
        throttle.record_failure(newest, "ann@example.com")
    assert throttle.check(newest, "ann@example.com") is not None


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoginThrottle(per_key_limit=0)
    with pytest.raises(ValueError, match="positive"):
        LoginThrottle(max_keys=0)
