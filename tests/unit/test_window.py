"""Maintenance windows: parsing, open/closed across days, midnight and time zones."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from orchestrator.errors import InventoryError
from orchestrator.window import parse

MADRID = ZoneInfo("Europe/Madrid")


def at(y: int, m: int, d: int, hh: int, mm: int, tz: ZoneInfo = MADRID) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=tz)


def test_weekday_window_in_its_own_zone() -> None:
    w = parse("Mon-Fri 02:00-05:00 Europe/Madrid")
    assert w.is_open(at(2026, 11, 23, 2, 0))  # Monday 02:00 local: opens
    assert w.is_open(at(2026, 11, 23, 4, 59))
    assert not w.is_open(at(2026, 11, 23, 5, 0))  # the end is exclusive
    assert not w.is_open(at(2026, 11, 28, 3, 0))  # Saturday
    # 01:30 UTC on a Monday in November is 02:30 in Madrid.
    assert w.is_open(dt.datetime(2026, 11, 23, 1, 30, tzinfo=dt.UTC))


def test_window_crossing_midnight_belongs_to_its_start_day() -> None:
    w = parse("Fri 22:00-04:00 UTC")
    utc = ZoneInfo("UTC")
    assert w.is_open(at(2026, 11, 27, 23, 0, utc))  # Friday night
    assert w.is_open(at(2026, 11, 28, 3, 59, utc))  # Saturday early morning, still Friday's window
    assert not w.is_open(at(2026, 11, 29, 3, 0, utc))  # Sunday early morning: Saturday is not in the window
    assert not w.is_open(at(2026, 11, 27, 3, 0, utc))  # Friday early morning belongs to Thursday


def test_lists_wrapping_ranges_and_always() -> None:
    assert parse("Sat,Sun 10:00-24:00 UTC").is_open(at(2026, 11, 29, 23, 59, ZoneInfo("UTC")))
    wrap = parse("Sat-Mon 00:00-01:00 UTC")
    assert wrap.days == frozenset({5, 6, 0})
    assert parse("always").is_open(at(2026, 1, 1, 12, 0))


def test_next_open() -> None:
    w = parse("Mon-Fri 02:00-05:00 Europe/Madrid")
    saturday = at(2026, 11, 28, 12, 0)
    nxt = w.next_open(saturday)
    assert nxt == at(2026, 11, 30, 2, 0)
    assert w.next_open(at(2026, 11, 23, 3, 0)) == at(2026, 11, 23, 3, 0)


@pytest.mark.parametrize(
    "text",
    [
        "Mon-Fri",
        "Funday 02:00-05:00 UTC",
        "Mon-Fri 2:00-5:00 UTC",
        "Mon 25:00-26:00 UTC",
        "Mon 03:00-03:00 UTC",
        "Mon 01:00-02:00 Mars/Olympus",
    ],
)
def test_malformed_windows_are_refused(text: str) -> None:
    with pytest.raises(InventoryError):
        parse(text)
