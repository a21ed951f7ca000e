"""Tests for parsing ``notify=`` routes."""

from __future__ import annotations

import pickle
from typing import cast

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from awaithumans.core._routes import (
    MAX_ROUTE_LENGTH,
    InvalidNotifyRouteError,
    NotifyRoute,
    TargetKind,
    parse_route,
    parse_routes,
)

# --- examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "channel", "target", "kind", "qualifier"),
    [
        ("slack:#approvals", "slack", "approvals", "channel", None),
        ("slack:#ops.eu-west_2", "slack", "ops.eu-west_2", "channel", None),
        ("slack:@alice", "slack", "alice", "handle", None),
        ("slack:U0123ABCD", "slack", "U0123ABCD", "user_id", None),
        ("slack:W0123ABCD", "slack", "W0123ABCD", "user_id", None),
        ("slack:C0123ABCD", "slack", "C0123ABCD", "channel", None),
        ("slack:G0123ABCD", "slack", "G0123ABCD", "channel", None),
        ("slack:D0123ABCD", "slack", "D0123ABCD", "channel", None),
        ("slack:alice@acme.com", "slack", "alice@acme.com", "email", None),
        ("slack+T0TEAM:#chan", "slack", "chan", "channel", "T0TEAM"),
        ("slack+T0TEAM:@bob", "slack", "bob", "handle", "T0TEAM"),
        ("slack+T0TEAM:U0123ABCD", "slack", "U0123ABCD", "user_id", "T0TEAM"),
        ("slack+T0TEAM:bob@acme.com", "slack", "bob@acme.com", "email", "T0TEAM"),
        ("email:a@b.com", "email", "a@b.com", "email", None),
        (
            "email:first.last+tag@mail.acme.co.uk",
            "email",
            "first.last+tag@mail.acme.co.uk",
            "email",
            None,
        ),
        ("email+billing:ap@acme.com", "email", "ap@acme.com", "email", "billing"),
        ("email+no-reply_2:ap@acme.com", "email", "ap@acme.com", "email", "no-reply_2"),
    ],
)
def test_valid_routes_parse_into_their_parts(
    raw: str, channel: str, target: str, kind: str, qualifier: str | None
) -> None:
    route = parse_route(raw)

    assert route == NotifyRoute(channel, target, kind, qualifier)  # type: ignore[arg-type]
    assert route.raw == raw
    assert str(route) == raw


def test_email_domain_is_lowercased_but_local_part_is_kept() -> None:
    route = parse_route("email:Alice@ACME.Com")

    assert route.target == "Alice@acme.com"
    assert str(route) == "email:Alice@acme.com"
    assert route.raw == "email:Alice@ACME.Com"
    assert route == parse_route("email:Alice@acme.com")


def test_raw_defaults_to_the_canonical_form() -> None:
    assert NotifyRoute("slack", "ops", "channel").raw == "slack:#ops"


def test_route_is_frozen() -> None:
    route = parse_route("slack:#ops")

    with pytest.raises(AttributeError):
        route.target = "other"  # type: ignore[misc]


def test_slack_names_may_have_80_characters() -> None:
    name = "a" * 80

    assert parse_route(f"slack:#{name}").target == name
    with pytest.raises(InvalidNotifyRouteError, match="81 characters"):
        parse_route(f"slack:#{name}a")


def test_routes_may_have_300_characters() -> None:
    # email:<local>@<domain>.com is limited by the route length, not by the email limit.
    email = "x" * 60 + "@" + "d" * 60 + ".com"
    assert parse_route("email:" + email).target == email
    with pytest.raises(InvalidNotifyRouteError, match="301 characters"):
        parse_route("slack:#" + "a" * (MAX_ROUTE_LENGTH - 6))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("sms:+15555550100", "unknown channel 'sms'"),
        ("Slack:#ops", "unknown channel 'Slack'"),
        (":#ops", "no channel before ':'"),
        ("slack", "no ':'"),
        ("slack:", "no target"),
        ("email:", "no target"),
        ("slack+:#ops", "between '+' and ':'"),
        ("#ops", "did you mean 'slack:#ops'?"),
        ("@alice", "did you mean 'slack:@alice'?"),
        ("alice@acme.com", "did you mean 'email:alice@acme.com'?"),
        ("ops", "no ':'"),
        ("slack: #ops", "whitespace"),
        ("slack:#ops ", "whitespace"),
        (" slack:#ops", "whitespace"),
        ("slack:#o\tps", "whitespace"),
        ("slack:#o\x00ps", "control character"),
        ("slack:#o\u200bps", "invisible"),
        ("slack:#", "channel name is empty"),
        ("slack:@", "handle is empty"),
        ("slack:#Ops", "contains 'O'"),
        ("slack:#ops!", "contains '!'"),
        ("slack:#ops#", "contains '#'"),
        ("slack:@Alice", "contains 'A'"),
        ("slack:@alice@acme.com", "contains '@'"),
        ("slack:#" + "a" * 81, "81 characters"),
        ("slack:#C0123ABCD", "takes no '#'"),
        ("slack:ops", "did you mean '#ops'?"),
        ("slack:U123ABC", "too short for a Slack id"),
        ("slack:X0123ABCD", "not a Slack target"),
        ("email:a,c@b.com", "names one address; ','"),
        ('email:"x"@b.com', "does not belong in it"),
        ("slack:u0123abcd!", "not a Slack target"),
        ("slack+team:#ops", "not a Slack team id"),
        ("slack+T:#ops", "not a Slack team id"),
        ("email+Billing:a@b.com", "sender identity 'Billing'"),
        ("email+bill.ing:a@b.com", "sender identity"),
        ("email:alice", "is not an email address"),
        ("email:a@b", "is not an email address"),
        ("email:@b.com", "is not an email address"),
        ("email:a@.com", "is not an email address"),
        ("email:a@b.com.", "is not an email address"),
        ("email:a@b..com", "is not an email address"),
        ("email:a@b@c.com", "more than one '@'"),
        ("email:#ops", "has no '@'"),
        ("email:" + "a" * 250 + "@b.com", "at most 254"),
        ("slack:" + "a" * 250 + "@b.com", "at most 254"),
        ("slack:#" + "a" * 400, "at most 300"),
    ],
)
def test_invalid_routes_say_what_is_wrong(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNotifyRouteError) as caught:
        parse_route(raw)

    err = caught.value
    assert err.route == raw
    assert reason in err.reason
    assert reason in str(err)
    assert str(err).startswith("Invalid notify route ")
    assert str(err).endswith((".", "?"))


def test_error_message_names_the_route() -> None:
    with pytest.raises(InvalidNotifyRouteError) as caught:
        parse_route("sms:+15555550100")

    assert str(caught.value) == (
        "Invalid notify route 'sms:+15555550100': unknown channel 'sms'; "
        "the channels are 'slack' and 'email'."
    )


def test_error_message_shortens_a_long_route_but_keeps_it_whole_on_the_error() -> None:
    raw = "slack:#" + "a" * 5000

    with pytest.raises(InvalidNotifyRouteError) as caught:
        parse_route(raw)

    assert caught.value.route == raw
    assert len(str(caught.value)) < 200
    assert "..." in str(caught.value)


def test_error_is_a_value_error_and_pickles() -> None:
    with pytest.raises(InvalidNotifyRouteError, match="unknown channel") as caught:
        parse_route("sms:1")

    assert isinstance(caught.value, ValueError)

    copy = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copy, InvalidNotifyRouteError)
    assert (copy.route, copy.reason, str(copy)) == (
        caught.value.route,
        caught.value.reason,
        str(caught.value),
    )


def test_non_string_route_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a str, not NoneType"):
        parse_route(None)  # type: ignore[arg-type]


# --- parse_routes -----------------------------------------------------------------------


def test_parse_routes_keeps_order_and_drops_repeats() -> None:
    routes = parse_routes(
        [
            "slack:#ops",
            "email:a@acme.com",
            "slack:#ops",
            "email:a@ACME.com",
            "slack:@alice",
        ]
    )

    assert [str(route) for route in routes] == [
        "slack:#ops",
        "email:a@acme.com",
        "slack:@alice",
    ]
    # The first spelling of a repeated route is the one kept.
    assert routes[1].raw == "email:a@acme.com"


def test_parse_routes_treats_different_qualifiers_as_different_routes() -> None:
    routes = parse_routes(["slack:#ops", "slack+T0TEAM:#ops", "slack+T1TEAM:#ops"])

    assert len(routes) == 3


def test_parse_routes_of_nothing_is_nothing() -> None:
    assert parse_routes([]) == []
    assert parse_routes(()) == []


def test_parse_routes_reports_the_first_bad_route() -> None:
    with pytest.raises(InvalidNotifyRouteError) as caught:
        parse_routes(["slack:#ops", "sms:1", "fax:2"])

    assert caught.value.route == "sms:1"


def test_parse_routes_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError, match=r"notify=\['slack:#ops'\]"):
        parse_routes("slack:#ops")


# --- properties -------------------------------------------------------------------------

slack_names = st.from_regex(r"[a-z0-9._-]{1,80}", fullmatch=True)
slack_ids = st.from_regex(r"[UWCGD][A-Z0-9]{7,20}", fullmatch=True)
team_ids = st.from_regex(r"T[A-Z0-9]{1,15}", fullmatch=True)
identities = st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True)

# Local parts: any printable, non-space text without '@' and without the characters that
# turn one address into a list or a name in a header; this is wider than real addresses on
# purpose, since the parser promises only the pragmatic rule.
_local_chars = st.characters(
    codec="utf-8",
    exclude_characters='@,;<>()[]\\"',
    exclude_categories=("Cc", "Cf", "Cs", "Z"),
)
local_parts = st.text(_local_chars, min_size=1, max_size=64).filter(str.isprintable)
domain_labels = st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True)
domains = st.lists(domain_labels, min_size=2, max_size=4).map(".".join)
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


@st.composite
def slack_routes(draw: st.DrawFn) -> NotifyRoute:
    kind, target = draw(
        st.one_of(
            st.tuples(st.just("channel"), slack_names),
            st.tuples(st.just("handle"), slack_names),
            slack_ids.map(lambda i: ("user_id" if i[0] in "UW" else "channel", i)),
            # A Slack target that starts with '#' is a channel, so such addresses are out.
            st.tuples(st.just("email"), emails.filter(lambda e: not e.startswith("#"))),
        )
    )
    return NotifyRoute("slack", target, cast(TargetKind, kind), draw(st.none() | team_ids))


email_routes = st.builds(
    NotifyRoute,
    channel=st.just("email"),
    target=emails,
    target_kind=st.just("email"),
    qualifier=st.none() | identities,
)

valid_routes = st.one_of(slack_routes(), email_routes)


@given(valid_routes)
def test_canonical_form_parses_back_to_the_same_route(route: NotifyRoute) -> None:
    parsed = parse_route(str(route))

    assert parsed == route
    assert parsed.raw == str(route)
    assert str(parsed) == str(route)


@given(local_parts, domains, st.sampled_from(["email:", "email+ops:", "slack:", "slack+T0TEAM:"]))
def test_upper_case_domains_normalise_to_a_stable_canonical_form(
    local: str, domain: str, head: str
) -> None:
    assume(head.startswith("email") or not local.startswith("#"))
    route = parse_route(f"{head}{local}@{domain.upper()}")

    assert route.target == f"{local}@{domain}"
    assert parse_route(str(route)) == route


_prefixes = st.sampled_from(
    ["", "slack:", "email:", "slack:#", "slack:@", "slack+T0TEAM:", "email+ops:", "slack+", "+"]
)
route_like_text = st.one_of(
    st.text(),
    st.builds(lambda prefix, rest: prefix + rest, _prefixes, st.text()),
    st.builds(lambda prefix, rest: prefix + rest, _prefixes, emails),
)


@given(route_like_text)
def test_arbitrary_text_parses_or_raises_only_the_route_error(raw: str) -> None:
    outcome = _parse_or_error(raw)

    if isinstance(outcome, InvalidNotifyRouteError):
        assert outcome.route == raw
        assert outcome.reason
    else:
        # Whatever parses must also survive its own canonical form.
        assert parse_route(str(outcome)) == outcome


def _parse_or_error(raw: str) -> NotifyRoute | InvalidNotifyRouteError:
    # Any other exception escapes and fails the test, which is the point.
    try:
        return parse_route(raw)
    except InvalidNotifyRouteError as err:
        return err


@given(st.lists(valid_routes, max_size=10))
def test_parse_routes_has_no_repeats_and_loses_no_route(routes: list[NotifyRoute]) -> None:
    parsed = parse_routes([str(route) for route in routes])

    assert len(parsed) == len(set(parsed))
    assert set(parsed) == set(routes)
