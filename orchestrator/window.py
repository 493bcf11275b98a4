"""Maintenance windows: ``"Mon-Fri 02:00-05:00 Europe/Madrid"``, ``"Sat,Sun 22:00-04:00 UTC"``, ``"always"``.

Days are a range or a comma list of Mon..Sun; the time span is local to the zone and may cross midnight
(then it belongs to the day it starts on); ``24:00`` ends a span at midnight. Pure and unit-tested: rollouts
ask ``is_open(now)`` and ``next_open(now)``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InventoryError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW_RE = re.compile(r"^\s*(?P<days>[A-Za-z,\-]+)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})\s+(?P<tz>\S+)\s*\Z")
HINT = 'write it like "Mon-Fri 02:00-05:00 Europe/Madrid", "Sat,Sun 22:00-04:00 UTC" or "always"'


@dataclass(frozen=True)
class Window:
    text: str
    days: frozenset[int] = frozenset(range(7))  # 0 = Monday
    start: int = 0  # minutes after local midnight
    end: int = 24 * 60
    tz: str = "UTC"
    always: bool = False

    def is_open(self, when: dt.datetime) -> bool:
        if self.always:
            return True
        local = when.astimezone(ZoneInfo(self.tz))
        minute = local.hour * 60 + local.minute
        today, yesterday = local.weekday(), (local.weekday() - 1) % 7
        if self.start < self.end:
            return today in self.days and self.start <= minute < self.end
        # Crosses midnight: the evening part belongs to today, the morning part to the day before.
        return (today in self.days and minute >= self.start) or (yesterday in self.days and minute < self.end)

    def next_open(self, when: dt.datetime) -> dt.datetime:
        """The first minute at or after ``when`` that lies in the window (within the next 8 days)."""
        if self.is_open(when):
            return when
        local = when.astimezone(ZoneInfo(self.tz))
        for offset in range(8):
            day = (local + dt.timedelta(days=offset)).date()
            if day.weekday() not in self.days:
                continue
            start = dt.datetime.combine(day, dt.time(self.start // 60, self.start % 60), ZoneInfo(self.tz))
            if start >= local:
                return start.astimezone(when.tzinfo or dt.UTC)
        raise AssertionError(f"window {self.text!r} never opens")  # unreachable: parse() requires a day


def _minutes(text: str) -> int:
    hours, minutes = (int(p) for p in text.split(":"))
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise ValueError(text)
    return hours * 60 + minutes


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.lower().split(","):
        first, sep, last = part.partition("-")
        a = DAYS.index(first[:3]) if first[:3] in DAYS and len(first) == 3 else -1
        b = DAYS.index(last[:3]) if sep and last[:3] in DAYS and len(last) == 3 else a
        if a < 0 or b < 0:
            raise ValueError(part)
        i = a
        while True:
            days.add(i)
            if i == b:
                break
            i = (i + 1) % 7
    return frozenset(days)


def parse(text: str) -> Window:
    if text.strip().lower() == "always":
        return Window(text="always", always=True)
    match = WINDOW_RE.match(text)
    if not match:
        raise InventoryError(f"malformed maintenance window {text!r}", hint=HINT)
    try:
        days = _days(match["days"])
        start, end = _minutes(match["start"]), _minutes(match["end"])
    except ValueError as exc:
        raise InventoryError(f"malformed maintenance window {text!r}: bad {exc}", hint=HINT) from exc
    if start == end:
        raise InventoryError(f"maintenance window {text!r} is empty (starts when it ends)", hint=HINT)
    try:
        ZoneInfo(match["tz"])
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InventoryError(
            f"unknown time zone {match['tz']!r} in window {text!r}", hint="use an IANA name like Europe/Madrid"
        ) from exc
    return Window(text=text.strip(), days=days, start=start, end=end, tz=match["tz"])
