"""Parse and validate the ``notify=`` routes of a task.

A route names one place where a human hears about a task::

    slack:#approvals            a Slack channel, by name
    slack:@alice                a Slack member, by handle
    slack:U0123ABCD             a Slack member (U/W) or conversation (C/G/D), by id
    slack:alice@acme.com        a Slack member, by the email of their Slack account
    slack+T0123ABCD:#ops        any Slack target above, in one workspace (its team id)
    email:alice@acme.com        an email
    email+billing:ap@acme.com   an email sent from a sender identity configured on the server

The SDK parses routes before it creates the task, so a typo fails on the caller's machine
with a message that names the route, rather than as a notification that silently never
arrives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

Channel: TypeAlias = Literal["slack", "email"]
TargetKind: TypeAlias = Literal["channel", "handle", "user_id", "email"]

# The wire model caps each route at 300 characters; checking the same limit here turns a
# server-side 422 into an error raised where the route was written.
MAX_ROUTE_LENGTH = 300
MAX_SLACK_NAME_LENGTH = 80
MAX_EMAIL_LENGTH = 254

# Slack channel names and legacy handles: lowercase ASCII letters, digits, '-', '_', '.'.
_SLACK_NAME = re.compile(r"[a-z0-9._-]+")
# Slack ids: U/W for members, C/G/D for public, private and direct conversations.
_SLACK_ID = re.compile(r"[UWCGD][A-Z0-9]{7,}")
# Id-shaped but possibly too short: used only to word the error better.
_SLACK_ID_LIKE = re.compile(r"[UWCGD][A-Z0-9]+")
_SLACK_TEAM_ID = re.compile(r"T[A-Z0-9]+")
_SENDER_IDENTITY = re.compile(r"[a-z0-9_-]+")
# Deliberately pragmatic rather than RFC 5322: one '@', no empty domain labels, and at least
# one dot in the domain. Whitespace and control characters are rejected before this runs.
_EMAIL = re.compile(r"[^@]+@[^@.]+(?:\.[^@.]+)+")

# Domains are case-insensitive, so the canonical form lowercases them; only ASCII letters,
# because str.lower() can change the length of some non-ASCII text.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_SHOWN_ROUTE_LENGTH = 60
_ROUTE_EXAMPLES = "'slack:#channel' or 'email:name@example.com'"


class InvalidNotifyRouteError(ValueError):
    """A ``notify=`` route is malformed.

    Attributes:
        route: The route exactly as the caller wrote it.
        reason: What is wrong with it, as a sentence fragment.
    """

    def __init__(self, route: str, reason: str) -> None:
        # A reason that ends in a question ("did you mean ...?") needs no full stop.
        end = "" if reason.endswith("?") else "."
        super().__init__(f"Invalid notify route {_shorten(route)!r}: {reason}{end}")
        self.route = route
        self.reason = reason

    def __reduce__(self) -> tuple[type[InvalidNotifyRouteError], tuple[str, str]]:
        # The default pickling would call cls(message), which does not match __init__;
        # errors cross process boundaries in the workflow adapters.
        return (type(self), (self.route, self.reason))


@dataclass(frozen=True, slots=True)
class NotifyRoute:
    """One parsed ``notify=`` route. Build it with :func:`parse_route`.

    Two routes are equal when they deliver to the same place; ``raw`` does not take part in
    equality or hashing, so ``slack:a@ACME.com`` and ``slack:a@acme.com`` are one route.

    Attributes:
        channel: ``"slack"`` or ``"email"``.
        target: The bare target: a channel name or handle without its ``#``/``@``, a Slack
            id, or an email address with its domain lowercased.
        target_kind: ``"channel"`` (a channel name, or a C/G/D conversation id),
            ``"handle"``, ``"user_id"`` (a U/W member id) or ``"email"``.
        qualifier: The Slack team id for ``slack+T…:`` routes, the sender identity for
            ``email+name:`` routes, otherwise None.
        raw: The route as written; defaults to the canonical form.
    """

    channel: Channel
    target: str
    target_kind: TargetKind
    qualifier: str | None = None
    raw: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.raw:
            # Frozen dataclasses allow assignment only through object.__setattr__.
            object.__setattr__(self, "raw", str(self))

    @property
    def is_slack_id(self) -> bool:
        """Whether the target is a Slack id (``C0123ABCD``, ``U0123ABCD``), not a name."""
        return self.channel == "slack" and bool(_SLACK_ID.fullmatch(self.target))

    def __str__(self) -> str:
        """Return the canonical form, which :func:`parse_route` maps back to an equal route."""
        head = self.channel if self.qualifier is None else f"{self.channel}+{self.qualifier}"
        return f"{head}:{self._target_text()}"

    def _target_text(self) -> str:
        if self.target_kind == "handle":
            return f"@{self.target}"
        # Channel names are lowercase and ids uppercase, so an id never needs the '#'.
        if self.target_kind == "channel" and not _SLACK_ID.fullmatch(self.target):
            return f"#{self.target}"
        return self.target


def parse_route(raw: str) -> NotifyRoute:
    """Parse one ``notify=`` route such as ``"slack:#approvals"``.

    Args:
        raw: The route as the caller wrote it.

    Returns:
        The parsed route; ``str()`` of it is the canonical form.

    Raises:
        InvalidNotifyRouteError: The route is malformed; the message says why.
        TypeError: ``raw`` is not a string.
    """
    value: object = raw
    if not isinstance(value, str):
        raise TypeError(f"A notify route must be a str, not {type(value).__name__}.")
    _check_text(raw)
    head, colon, target = raw.partition(":")
    if not colon:
        raise InvalidNotifyRouteError(raw, _missing_colon_reason(raw))
    channel, plus, qualifier = head.partition("+")
    if not channel:
        raise InvalidNotifyRouteError(raw, f"there is no channel before ':'; use {_ROUTE_EXAMPLES}")
    if channel not in ("slack", "email"):
        raise InvalidNotifyRouteError(
            raw, f"unknown channel {channel!r}; the channels are 'slack' and 'email'"
        )
    if plus and not qualifier:
        raise InvalidNotifyRouteError(raw, "there is nothing between '+' and ':'")
    if not target:
        raise InvalidNotifyRouteError(raw, "there is no target after ':'")
    if channel == "slack":
        return _parse_slack(raw, qualifier if plus else None, target)
    return _parse_email(raw, qualifier if plus else None, target)


def parse_routes(routes: Sequence[str]) -> list[NotifyRoute]:
    """Parse a task's ``notify=`` list, dropping repeats and keeping the first order.

    Args:
        routes: The routes as the caller wrote them.

    Returns:
        One route per distinct destination, in the order first seen.

    Raises:
        InvalidNotifyRouteError: For the first malformed route in the list.
        TypeError: ``routes`` is a single string rather than a list of them.
    """
    # A bare string is a Sequence[str] too; iterating it would report its first character as
    # a bad route, which hides the actual mistake.
    if isinstance(routes, str):
        raise TypeError(
            f"notify= takes a list of routes, not a single string; write notify=[{routes!r}]."
        )
    # A dict keeps insertion order and treats equal routes as one key.
    unique: dict[NotifyRoute, None] = {}
    for raw in routes:
        unique.setdefault(parse_route(raw), None)
    return list(unique)


def _check_text(raw: str) -> None:
    if not raw:
        raise InvalidNotifyRouteError(raw, "the route is empty")
    if len(raw) > MAX_ROUTE_LENGTH:
        raise InvalidNotifyRouteError(
            raw, f"it has {len(raw)} characters, and routes may have at most {MAX_ROUTE_LENGTH}"
        )
    if any(char.isspace() for char in raw):
        raise InvalidNotifyRouteError(raw, "routes may not contain whitespace")
    if not raw.isprintable():
        raise InvalidNotifyRouteError(raw, "it contains an invisible or control character")


def _missing_colon_reason(raw: str) -> str:
    if raw.partition("+")[0] in ("slack", "email"):
        return "there is no ':' and no target after the channel"
    if raw[0] in "#@":
        return f"there is no channel; did you mean {_shorten('slack:' + raw)!r}?"
    if "@" in raw:
        return f"there is no channel; did you mean {_shorten('email:' + raw)!r}?"
    return f"there is no ':'; write routes as {_ROUTE_EXAMPLES}"


def _parse_slack(raw: str, team: str | None, target: str) -> NotifyRoute:
    if team is not None and not _SLACK_TEAM_ID.fullmatch(team):
        raise InvalidNotifyRouteError(
            raw, f"{team!r} is not a Slack team id, which looks like 'T0123ABCD'"
        )
    sigil, rest = target[0], target[1:]
    if sigil == "#":
        if _SLACK_ID.fullmatch(rest):
            raise InvalidNotifyRouteError(raw, f"a Slack id takes no '#'; write {rest!r} alone")
        _check_slack_name(raw, rest, "channel name")
        return NotifyRoute("slack", rest, "channel", team, raw)
    if sigil == "@":
        _check_slack_name(raw, rest, "handle")
        return NotifyRoute("slack", rest, "handle", team, raw)
    if "@" in target:
        return NotifyRoute("slack", _check_email(raw, target), "email", team, raw)
    if _SLACK_ID.fullmatch(target):
        kind: TargetKind = "user_id" if sigil in "UW" else "channel"
        return NotifyRoute("slack", target, kind, team, raw)
    reason = (
        f"{target!r} is not a Slack target; use '#channel', '@handle', an id such as "
        "'U0123ABCD', or an email address"
    )
    if _SLACK_ID_LIKE.fullmatch(target):
        reason = f"{target!r} is too short for a Slack id, which has at least 8 characters"
    elif _SLACK_NAME.fullmatch(target):
        reason = f"{target!r} is not a Slack target; did you mean '#{target}'?"
    raise InvalidNotifyRouteError(raw, reason)


def _check_slack_name(raw: str, name: str, what: str) -> None:
    if not name:
        raise InvalidNotifyRouteError(raw, f"the {what} is empty")
    if len(name) > MAX_SLACK_NAME_LENGTH:
        raise InvalidNotifyRouteError(
            raw,
            f"the {what} has {len(name)} characters, and Slack allows {MAX_SLACK_NAME_LENGTH}",
        )
    if not _SLACK_NAME.fullmatch(name):
        bad = next(char for char in name if not _SLACK_NAME.fullmatch(char))
        raise InvalidNotifyRouteError(
            raw,
            f"the {what} contains {bad!r}, but Slack allows only lowercase letters, digits, "
            "'-', '_' and '.'",
        )


def _parse_email(raw: str, identity: str | None, target: str) -> NotifyRoute:
    if identity is not None and not _SENDER_IDENTITY.fullmatch(identity):
        raise InvalidNotifyRouteError(
            raw,
            f"sender identity {identity!r} may use only lowercase letters, digits, '-' and '_'",
        )
    return NotifyRoute("email", _check_email(raw, target), "email", identity, raw)


def _check_email(raw: str, address: str) -> str:
    """Validate an email address and return it with its domain lowercased."""
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidNotifyRouteError(
            raw,
            f"the email address has {len(address)} characters, and at most "
            f"{MAX_EMAIL_LENGTH} are allowed",
        )
    if "@" not in address:
        raise InvalidNotifyRouteError(
            raw, f"{_shorten(address)!r} is not an email address, as it has no '@'"
        )
    if address.count("@") > 1:
        raise InvalidNotifyRouteError(
            raw, f"the email address {_shorten(address)!r} has more than one '@'"
        )
    if not _EMAIL.fullmatch(address):
        raise InvalidNotifyRouteError(
            raw, f"{_shorten(address)!r} is not an email address like 'name@example.com'"
        )
    # Characters that make one address into a list, or an address into a name, in a header.
    odd = sorted(set(address) & set(',;<>()[]\\"'))
    if odd:
        raise InvalidNotifyRouteError(
            raw, f"an email route names one address; {''.join(odd)!r} does not belong in it"
        )
    local, _, domain = address.partition("@")
    return f"{local}@{domain.translate(_ASCII_LOWER)}"


def _shorten(text: str) -> str:
    # Error messages quote the route; a 10,000-character mistake should not flood the log.
    if len(text) <= _SHOWN_ROUTE_LENGTH:
        return text
    return text[: _SHOWN_ROUTE_LENGTH - 3] + "..."
