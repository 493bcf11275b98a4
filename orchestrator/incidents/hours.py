"""Support hours as the tiers state them (``playbooks/vars/tiers.yml``), read as a schedule: is a moment inside
them, and when do they next begin. Pure functions; the paging engine holds a lower tier's pages until then.

Accepted text: ``24/7``, or ``DAYS HH:MM-HH:MM ZONE`` where DAYS is a day (``Mon``), a range (``Mon-Fri``) or a
comma list of those (``Mon-Fri,Sun``) and ZONE an IANA name (``CET``, ``Europe/Berlin``). The zone's daylight
saving time applies: ``CET`` is the zone of the tzdata database, CET in winter and CEST in summer.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS_RE = re.compile(r"^(?P<days>[A-Za-z,-]+)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})\s+(?P<zone>\S+)\Z")


@dataclass(frozen=True)
class SupportHours:
    """A weekly schedule; ``always`` for 24/7. ``end`` is exclusive; ``end <= start`` is refused."""

    text: str
    always: bool
    days: frozenset[int] = frozenset()
    start: _dt.time = _dt.time(0)
    end: _dt.time = _dt.time(0)
    zone: str = "UTC"

    def is_open(self, at: _dt.datetime) -> bool:
        if self.always:
            return True
        local = at.astimezone(ZoneInfo(self.zone))
        return local.weekday() in self.days and self.start <= local.time().replace(tzinfo=None) < self.end

    def next_opening(self, at: _dt.datetime) -> _dt.datetime:
        """``at`` itself when the hours are open then, else the moment (UTC) they next begin."""
        if self.is_open(at):
            return at
        tz = ZoneInfo(self.zone)
        local = at.astimezone(tz)
        for ahead in range(8):
            day = local.date() + _dt.timedelta(days=ahead)
            if day.weekday() not in self.days:
                continue
            begin = _dt.datetime.combine(day, self.start, tzinfo=tz)
            if begin > local:
                return begin.astimezone(_dt.UTC)
        raise AssertionError(f"support hours {self.text!r} never open")  # parse() refuses an empty week


def _day(name: str, text: str) -> int:
    try:
        return DAYS.index(name.strip().lower()[:3])
    except ValueError:
        raise ConfigError(f"support hours {text!r}: {name!r} is not a day", hint="use Mon..Sun") from None


def _time(value: str, text: str) -> _dt.time:
    try:
        return _dt.time.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"support hours {text!r}: {value!r} is not a time of day HH:MM") from None


def parse(text: str) -> SupportHours:
    """Read support hours; anything else is a :class:`ConfigError` naming the part that is wrong."""
    cleaned = " ".join(str(text).split())
    if cleaned == "24/7":
        return SupportHours(text=cleaned, always=True)
    match = HOURS_RE.match(cleaned)
    if not match:
        raise ConfigError(
            f"support hours {text!r} are not understood", hint="write '24/7' or e.g. 'Mon-Fri 08:00-20:00 CET'"
        )
    days: set[int] = set()
    for part in match["days"].split(","):
        first, _, last = part.partition("-")
        a, b = _day(first, text), _day(last or first, text)
        if b < a:
            raise ConfigError(f"support hours {text!r}: the day range {part!r} runs backwards")
        days.update(range(a, b + 1))
    start, end = _time(match["start"], text), _time(match["end"], text)
    if end <= start:
        raise ConfigError(f"support hours {text!r}: the end is not after the start (overnight hours: split them)")
    try:
        ZoneInfo(match["zone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"support hours {text!r}: unknown time zone {match['zone']!r}") from None
    return SupportHours(text=cleaned, always=False, days=frozenset(days), start=start, end=end, zone=match["zone"])
