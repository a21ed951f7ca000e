"""Business hours: when reminders and escalations count time (``AWAITHUMANS_BUSINESS_HOURS``).

The grammar, one line::

    SPEC    := CLAUSE { ";" CLAUSE } ZONE
    CLAUSE  := DAYS WINDOW { "," WINDOW }
    DAYS    := DAY [ "-" DAY ] { "," DAY [ "-" DAY ] }      (Mon Tue Wed Thu Fri Sat Sun)
    WINDOW  := HH:MM "-" HH:MM                              (start before end; 24:00 ends a day)
    ZONE    := an IANA time zone name                       (Europe/Berlin, UTC)

for example ``Mon-Fri 09:00-17:00 Europe/Berlin`` or
``Mon-Thu 08:00-12:00,13:00-17:00; Fri 08:00-12:00 America/New_York``. A day range may wrap
(``Sun-Thu``); a window never crosses midnight (a night shift is two clauses:
``Mon-Fri 22:00-24:00; Tue-Sat 00:00-06:00``). Day names are case-insensitive.

:meth:`BusinessHours.add` moves an instant forward by an amount of business time. Windows are
wall-clock times in the zone, turned into instants day by day, so they follow daylight saving
changes; the time counted inside a window is real elapsed time (a 00:00-06:00 window is 5 h
on the night the clocks go forward). A wall time that does not exist that day (inside the
spring gap) or exists twice (the autumn repeat) is read as PEP 495's ``fold=0`` does: with
the offset in force before the change. Pure: the standard library only, no clock, no I/O.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
# The longest walk add() may take, in days: reminders are bounded by the longest timeout
# (30 days), and even one business hour a week reaches 30 days of it within 14 years.
_MAX_DAYS = 366 * 15


class InvalidBusinessHours(ValueError):
    """The spec does not follow the grammar; the message says where and shows an example."""


@dataclass(frozen=True, slots=True)
class Window:
    """One stretch of a day, as minutes after local midnight: [start, end)."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """The parsed spec: the windows of each weekday (Monday first) and the zone."""

    spec: str
    zone: ZoneInfo
    days: tuple[tuple[Window, ...], ...]

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which ``seconds`` of business time have passed since ``start``.

        Counting begins at ``start`` if it is inside a window, else at the next window's
        start; it ends as soon as the amount is reached (the end of a window, not the start
        of the next one, when it lands exactly there). The result is in UTC.

        Raises:
            ValueError: ``start`` is naive (no time zone).
        """
        if start.tzinfo is None:
            raise ValueError("start must carry a time zone")
        left = max(0.0, float(seconds))
        local_day = start.astimezone(self.zone).date()
        for offset in range(_MAX_DAYS):
            day = local_day + timedelta(days=offset)
            for opens, closes in self._instants(day):
                if closes <= start:
                    continue
                opens = max(opens, start)
                span = (closes - opens).total_seconds()
                if left <= span:
                    return (opens + timedelta(seconds=left)).astimezone(UTC)
                left -= span
        raise ValueError(f"business hours {self.spec!r} leave no time within {_MAX_DAYS} days")

    def _instants(self, day: date) -> list[tuple[datetime, datetime]]:
        """The windows of one local date, as UTC instants (empty ones dropped)."""
        found = []
        for window in self.days[day.weekday()]:
            opens = self._at(day, window.start)
            closes = self._at(day, window.end)
            if closes > opens:
                found.append((opens, closes))
        return found

    def _at(self, day: date, minutes: int) -> datetime:
        if minutes == 24 * 60:
            day, minutes = day + timedelta(days=1), 0
        wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        return wall.astimezone(UTC)

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """How much business time lies between two instants (0 when ``end`` is earlier)."""
        total = 0.0
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            for opens, closes in self._instants(day):
                overlap = (min(closes, end) - max(opens, start)).total_seconds()
                total += max(0.0, overlap)
            day += timedelta(days=1)
        return total


@functools.lru_cache(maxsize=8)
def business_hours_of(spec: str | None) -> BusinessHours | None:
    """The parsed setting (None when unset), parsed once per spec: the scheduler and every
    create ask for it, and ``Settings`` has already refused a bad one at start-up."""
    return None if spec is None else parse_business_hours(spec)


_EXAMPLE = "e.g. 'Mon-Fri 09:00-17:00 Europe/Berlin'"


def parse_business_hours(spec: str) -> BusinessHours:
    """Read a spec (see the module's grammar).

    Raises:
        InvalidBusinessHours: What is wrong, naming the part at fault.
    """
    text = " ".join(spec.split())
    head, _, zone_name = text.rpartition(" ")
    if not head or not zone_name:
        _refuse(f"{spec!r} needs days, hours and a time zone")
    zone = _zone(zone_name)
    days: list[list[Window]] = [[] for _ in DAY_NAMES]
    for clause in head.split(";"):
        clause = clause.strip()
        if not clause:
            _refuse(f"{spec!r} has an empty clause (two ';' in a row?)")
        day_part, _, hours_part = clause.partition(" ")
        if not hours_part.strip():
            _refuse(f"{clause!r} needs hours after its days")
        windows = [_window(w) for w in hours_part.replace(" ", "").split(",")]
        for weekday in _days(day_part):
            days[weekday].extend(windows)
    for weekday, windows in enumerate(days):
        windows.sort(key=lambda w: w.start)
        for before, after in itertools.pairwise(windows):
            if after.start < before.end:
                _refuse(f"the windows of {DAY_NAMES[weekday]} overlap")
    return BusinessHours(text, zone, tuple(tuple(w) for w in days))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return _refuse(f"{name!r} is not a time zone name (IANA, like Europe/Berlin or UTC)")


def _days(part: str) -> list[int]:
    found: list[int] = []
    for item in part.split(","):
        first, dash, last = item.strip().partition("-")
        start = _day(first)
        end = _day(last) if dash else start
        span = (end - start) % 7
        found.extend((start + i) % 7 for i in range(span + 1))
    return found


def _day(name: str) -> int:
    """'mon', 'mond', 'monday': a prefix of a day's full name, three letters at least."""
    key = name.strip().lower()
    for index, full in enumerate(_FULL):
        if len(key) >= 3 and full.startswith(key):
            return index
    return _refuse(f"{name!r} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")


_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _window(text: str) -> Window:
    opens, dash, closes = text.partition("-")
    if not dash:
        _refuse(f"{text!r} is not a window HH:MM-HH:MM")
    start, end = _minutes(opens), _minutes(closes)
    if end <= start:
        _refuse(
            f"{text!r} ends before it starts; a window never crosses midnight "
            "(write a night shift as two clauses)"
        )
    return Window(start, end)


def _minutes(text: str) -> int:
    found = _TIME.fullmatch(text)
    if found is None:
        _refuse(f"{text!r} is not a time HH:MM")
    hours, minutes = int(found[1]), int(found[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        _refuse(f"{text!r} is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def _refuse(message: str) -> NoReturn:
    raise InvalidBusinessHours(f"{message}; {_EXAMPLE}")
