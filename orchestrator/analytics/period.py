"""Periods, parsed at the edge: a month (``2026-11``) or a range of days (``2026-11-03..2026-11-09``, both
days included). All in UTC; the end is exclusive. A period that has not started yet is refused; one that runs
into the future ends now (its figures are the ones so far)."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from .errors import PeriodError

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})\Z")
RANGE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})\Z")
# A bound on what one request reads: a year of one client's rows is what the indexes are sized for.
MAX_DAYS = 366
HINT = "give a month as YYYY-MM (2026-11) or days as YYYY-MM-DD..YYYY-MM-DD"


@dataclass(frozen=True)
class Period:
    label: str
    start: _dt.datetime
    end: _dt.datetime  # exclusive; never after the moment the period was parsed

    @property
    def days(self) -> list[str]:
        """Every UTC day the period touches, as YYYY-MM-DD: the buckets of the daily charts."""
        out, day = [], self.start.date()
        while _dt.datetime.combine(day, _dt.time(), _dt.UTC) < self.end:
            out.append(day.isoformat())
            day += _dt.timedelta(days=1)
        return out

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _day(text: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"period day {text!r} is not a date", hint=HINT) from None


def parse_period(text: str, now: _dt.datetime | None = None) -> Period:
    """The period ``text`` names, or :class:`PeriodError` (exit 2) saying why not."""
    now = now or _dt.datetime.now(_dt.UTC)
    text = text.strip()
    if m := MONTH_RE.match(text):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12 or year < 2000:
            raise PeriodError(f"period {text!r} is not a month", hint=HINT)
        first = _dt.date(year, month, 1)
        last = _dt.date(year + month // 12, month % 12 + 1, 1) - _dt.timedelta(days=1)
    elif m := RANGE_RE.match(text):
        first, last = _day(m[1]), _day(m[2])
        if last < first:
            raise PeriodError(f"period {text!r} ends before it starts", hint=HINT)
    else:
        raise PeriodError(f"period {text!r} is neither a month nor a range of days", hint=HINT)
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise PeriodError(f"period {text!r} spans {days} days; at most {MAX_DAYS}", hint="ask for one year or less")
    start = _dt.datetime.combine(first, _dt.time(), _dt.UTC)
    end = _dt.datetime.combine(last + _dt.timedelta(days=1), _dt.time(), _dt.UTC)
    if start > now:
        raise PeriodError(f"period {text!r} is in the future", hint="ask for a period that has started")
    return Period(label=text, start=start, end=min(end, now))
