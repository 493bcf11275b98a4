"""Support hours as a schedule, and the per-tier ladder timing built on them (pure; a fixed clock)."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.errors import ConfigError
from orchestrator.incidents import hours
from orchestrator.incidents.policy import parse_policies, policy_for
from orchestrator.incidents.response import month_bounds

UTC = dt.UTC
# 2026-12-07 is a Monday; CET is UTC+1 in December, UTC+2 (CEST) in July.
MON_0659_UTC = dt.datetime(2026, 12, 7, 6, 59, tzinfo=UTC)


def test_24_7_is_always_open() -> None:
    h = hours.parse("24/7")
    assert h.always and h.is_open(MON_0659_UTC) and h.next_opening(MON_0659_UTC) == MON_0659_UTC


def test_office_hours_in_cet_with_daylight_saving() -> None:
    h = hours.parse("Mon-Fri 08:00-20:00 CET")
    assert not h.is_open(MON_0659_UTC)  # 07:59 CET
    assert h.next_opening(MON_0659_UTC) == dt.datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    assert h.is_open(dt.datetime(2026, 12, 7, 7, 0, tzinfo=UTC))
    assert not h.is_open(dt.datetime(2026, 12, 7, 19, 0, tzinfo=UTC))  # 20:00 CET: the end is exclusive
    # Friday evening -> Monday 08:00 CET.
    fri_night = dt.datetime(2026, 12, 11, 21, 0, tzinfo=UTC)
    assert h.next_opening(fri_night) == dt.datetime(2026, 12, 14, 7, 0, tzinfo=UTC)
    # Summer: 08:00 CEST is 06:00 UTC.
    assert h.next_opening(dt.datetime(2026, 7, 6, 5, 0, tzinfo=UTC)) == dt.datetime(2026, 7, 6, 6, 0, tzinfo=UTC)


def test_day_lists_and_the_saturday_of_professional() -> None:
    h = hours.parse("Mon-Sat 07:00-22:00 CET")
    sat_late = dt.datetime(2026, 12, 12, 21, 30, tzinfo=UTC)  # 22:30 CET Saturday
    assert h.next_opening(sat_late) == dt.datetime(2026, 12, 14, 6, 0, tzinfo=UTC)
    assert hours.parse("Sun,Tue 10:00-11:00 UTC").days == frozenset({1, 6})


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("whenever", "not understood"),
        ("Mon-Fri 20:00-08:00 CET", "not after the start"),
        ("Fri-Mon 08:00-20:00 CET", "runs backwards"),
        ("Mon-Fri 08:00-20:00 Mars/Olympus", "unknown time zone"),
        ("Mox-Fri 08:00-20:00 CET", "not a day"),
        ("Mon-Fri 08:00-25:00 CET", "not a time of day"),
    ],
)
def test_bad_support_hours_are_refused_naming_the_part(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        hours.parse(text)


def test_enterprise_ladder_pages_at_once_then_10_20_and_breach_at_30() -> None:
    p = policy_for("enterprise")
    opened = dt.datetime(2026, 12, 13, 3, 0, tzinfo=UTC)  # a Sunday night: 24/7 does not wait
    due = [(p.step_due(opened, s) - opened, s.target, s.breach) for s in p.ladder]
    assert due == [
        (dt.timedelta(0), "primary", False),
        (dt.timedelta(minutes=10), "primary", False),
        (dt.timedelta(minutes=20), "second_line", False),
        (dt.timedelta(minutes=30), None, True),
    ]
    assert p.due_at(opened) == opened + dt.timedelta(minutes=30)
    assert [s.index for s in p.due_steps(opened, opened + dt.timedelta(minutes=19, seconds=59))] == [0, 1]


def test_essentials_out_of_hours_waits_for_the_next_opening() -> None:
    p = policy_for("essentials")
    sat = dt.datetime(2026, 12, 12, 12, 0, tzinfo=UTC)
    monday_8_cet = dt.datetime(2026, 12, 14, 7, 0, tzinfo=UTC)
    assert p.clock_start(sat) == monday_8_cet
    assert p.due_steps(sat, monday_8_cet - dt.timedelta(seconds=1)) == []
    assert [s.index for s in p.due_steps(sat, monday_8_cet)] == [0]
    assert p.due_at(sat) == monday_8_cet + dt.timedelta(minutes=240)


def test_a_step_falling_after_hours_waits_for_the_next_day() -> None:
    p = policy_for("essentials")
    friday_1930_cet = dt.datetime(2026, 12, 11, 18, 30, tzinfo=UTC)
    second = p.ladder[1]  # +60 min = 20:30 CET, closed: Monday 08:00
    assert p.step_due(friday_1930_cet, second) == dt.datetime(2026, 12, 14, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "data",
    [
        {"tiers": {"enterprise": {"target_minutes": 30, "ladder": [{"after_minutes": 0, "page": "boss"}]}}},
        {"tiers": {"enterprise": {"target_minutes": 30, "ladder": [{"after_minutes": 0}]}}},
        {"tiers": {"enterprise": {"ladder": []}}},
        {
            "tiers": {
                "enterprise": {
                    "target_minutes": 30,
                    "ladder": [{"after_minutes": 10, "page": "primary"}, {"after_minutes": 0, "page": "primary"}],
                }
            }
        },
        {"nope": 1},
    ],
)
def test_bad_policy_data_is_refused(data: object) -> None:
    with pytest.raises(ConfigError):
        parse_policies(data)


def test_month_bounds() -> None:
    assert month_bounds("2026-12") == (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError):
        month_bounds("2026-13")
