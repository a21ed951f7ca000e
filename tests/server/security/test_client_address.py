"""The client's address: the socket peer, or behind trusted proxies the hop they vouch for."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from awaithumans.server.security import client_address
from awaithumans.server.security.client_address import Network, parse_address
from awaithumans.server.settings import Settings, describe_error

PROXIES: list[Network] = [
    ipaddress.ip_network("10.0.0.2"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("fd00::/8"),
]


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("10.0.0.2", ["203.0.113.7"], []) == "10.0.0.2"


def test_an_untrusted_peer_cannot_name_an_address() -> None:
    assert client_address("198.51.100.1", ["203.0.113.7"], PROXIES) == "198.51.100.1"


def test_a_trusted_peer_forwards_its_client() -> None:
    assert client_address("10.0.0.2", ["203.0.113.7"], PROXIES) == "203.0.113.7"


def test_no_header_from_a_trusted_peer_is_the_peer() -> None:
    assert client_address("10.0.0.2", [], PROXIES) == "10.0.0.2"


@pytest.mark.parametrize(
    "header",
    [
        "1.1.1.1, 203.0.113.7",  # a spoofed entry the client sent, then what the proxy added
        "10.0.0.2, 203.0.113.7",  # a spoofed *trusted* entry does not help either
        "garbage, 203.0.113.7",
        "172.16.0.9, 1.1.1.1, 203.0.113.7",
    ],
)
def test_spoofed_leftmost_entries_are_never_reached(header: str) -> None:
    assert client_address("10.0.0.2", [header], PROXIES) == "203.0.113.7"


def test_chains_of_trusted_proxies_are_walked_right_to_left() -> None:
    header = "1.1.1.1, 203.0.113.7, 172.16.0.9, 172.20.1.1"
    assert client_address("10.0.0.2", [header], PROXIES) == "203.0.113.7"


def test_several_headers_are_one_list() -> None:
    headers = ["1.1.1.1, 203.0.113.7", "172.16.0.9"]
    assert client_address("10.0.0.2", headers, PROXIES) == "203.0.113.7"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert client_address("10.0.0.2", ["172.16.0.7, 172.16.0.9"], PROXIES) == "172.16.0.7"


def test_an_unreadable_hop_counts_as_the_proxy_that_wrote_it() -> None:
    assert client_address("10.0.0.2", ["203.0.113.7, unknown"], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", ["1.1.1.1, garbage, 172.16.0.9"], PROXIES) == "172.16.0.9"
    assert client_address("10.0.0.2", [" , 203.0.113.7,"], PROXIES) == "203.0.113.7"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert client_address("10.0.0.2", ["203.0.113.7:5123"], PROXIES) == "203.0.113.7"
    assert client_address("10.0.0.2", ["[2001:db8::7]:443"], PROXIES) == "2001:db8::7"
    assert client_address("10.0.0.2", ["2001:db8::7"], PROXIES) == "2001:db8::7"
    # A dual-stack socket reports an IPv4 proxy as a mapped IPv6 address.
    assert client_address("::ffff:10.0.0.2", ["203.0.113.7"], PROXIES) == "203.0.113.7"
    assert client_address("fd00::1", ["203.0.113.7"], PROXIES) == "203.0.113.7"
    assert client_address("::ffff:198.51.100.1", [], PROXIES) == "198.51.100.1"
    assert parse_address("not an address") is None


def test_no_peer_and_non_address_peers() -> None:
    assert client_address(None, ["203.0.113.7"], PROXIES) == "unknown"
    assert client_address("testclient", ["203.0.113.7"], PROXIES) == "testclient"


@pytest.mark.parametrize(
    ("peer", "header"),
    [
        ("10.0.0.2", "1.1.1.1, 203.0.113.7"),
        ("10.0.0.2", "172.16.0.7, 172.16.0.9"),
        ("10.0.0.2", "1.1.1.1, garbage, 172.16.0.9"),
        ("10.0.0.2", "203.0.113.7, unknown"),
        ("10.0.0.2", ""),
        ("198.51.100.1", "203.0.113.7"),
    ],
)
def test_computing_it_twice_gives_the_same_address(peer: str, header: str) -> None:
    # The access-log wrapper rewrites the scope's client, and the app computes it again.
    once = client_address(peer, [header], PROXIES)
    assert client_address(once, [header], PROXIES) == once


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"trusted_proxies": "10.0.0.1/8"}, "10.0.0.1/8 has host bits set"),
        ({"trusted_proxies": "*"}, "'*' is not an IP address or CIDR network"),
        ({"trusted_proxies": "10.0.0.1, proxy.local"}, "'proxy.local' is not an IP address"),
        ({"login_limit_per_account": "lots"}, "'lots' is not COUNT/SECONDS, e.g. 20/600"),
        ({"setup_limit_per_address": "0/60"}, "'0/60' is not COUNT/SECONDS"),
        ({"handoff_limit_per_address": "5/inf"}, "'5/inf' is not COUNT/SECONDS"),
    ],
)
def test_bad_settings_are_refused_in_one_clear_line(env: dict[str, str], said: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(**env)  # type: ignore[arg-type]
    line = describe_error(refused.value)
    assert line.startswith(f"AWAITHUMANS_{next(iter(env)).upper()}=")
    assert said in line


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWAITHUMANS_TRUSTED_PROXIES", " 10.0.0.2 , 172.16.0.0/12,fd00::/8 ")
    monkeypatch.setenv("AWAITHUMANS_ONE_CLICK_LIMIT_PER_ADDRESS", "7/70")
    settings = Settings()
    assert settings.trusted_proxies == PROXIES
    assert settings.one_click_limit_per_address == (7, 70.0)
    assert settings.login_limit_per_account == (20, 3600.0)  # the default
