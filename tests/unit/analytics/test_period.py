"""Periods parsed at the edge: months, day ranges, and every way a period is refused (exit 2, one line)."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.analytics import PeriodError, parse_period

NOW = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)


def test_month() -> None:
    p = parse_period("2026-11", NOW)
    assert (p.start, p.end) == (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert len(p.days) == 30 and p.days[0] == "2026-11-01" and p.days[-1] == "2026-11-30"


def test_december_rolls_into_the_next_year() -> None:
    p = parse_period("2025-12", NOW)
    assert p.end == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_current_month_ends_now() -> None:
    p = parse_period("2026-12", NOW)
    assert p.end == NOW and p.days[-1] == "2026-12-07"


def test_day_range_includes_both_days() -> None:
    p = parse_period("2026-11-03..2026-11-04", NOW)
    assert p.seconds == 2 * 86400 and p.days == ["2026-11-03", "2026-11-04"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026-13", "not a month"),
        ("november", "neither a month nor a range"),
        ("2026-11-31..2026-12-01", "not a date"),
        ("2026-11-09..2026-11-03", "ends before it starts"),
        ("2027-01", "in the future"),
        ("2026-12-08..2026-12-09", "in the future"),
        ("2024-01-01..2026-11-30", "at most 366"),
        ("", "neither a month nor a range"),
    ],
)
def test_refused(text: str, why: str) -> None:
    with pytest.raises(PeriodError, match=why) as caught:
        parse_period(text, NOW)
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
