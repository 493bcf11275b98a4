"""The pure parts of bench/defence.py: the 95 % point, missing hosts named, the table."""

from __future__ import annotations

import datetime as dt

import pytest

from bench import defence

T0 = dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC)


def test_the_95_percent_point_is_the_nearest_rank() -> None:
    assert defence.nearest_rank([1.0, 2.0, 3.0, 4.0], 0.95) == 4.0
    assert defence.nearest_rank([float(i) for i in range(1, 41)], 0.95) == 38.0
    assert defence.nearest_rank([5.0], 0.95) == 5.0


def test_to_95_counts_from_the_start_and_names_hosts_that_never_reported() -> None:
    reached = {f"h{i}": T0 + dt.timedelta(seconds=10 + i) for i in range(4)}
    assert defence.to_95(reached, list(reached), T0, "the pack") == 13.0
    with pytest.raises(RuntimeError, match="h9"):
        defence.to_95(reached, [*reached, "h9"], T0, "the pack")


def test_times_kept_as_text_by_sqlite_are_read_as_utc() -> None:
    assert defence._utc("2026-12-07 20:00:00") == T0
    assert defence._utc(T0.replace(tzinfo=None)) == T0


def test_the_table_says_whether_the_goals_were_met() -> None:
    result = {
        "hosts": 4, "dwell_seconds": 30, "goal_95_within_seconds": 60, "goal_95_met": True,
        "ratio_pack_to_release_95": 0.4,
        "pack": {"to_95_percent_seconds": 40.0, "push_wall_seconds": 45.0, "kill_switch_seconds": 7.0},
        "release": {"to_95_percent_seconds": 100.0, "rollout_wall_seconds": 110.0},
    }  # fmt: skip
    text = defence.table(result)
    assert "met" in text and "MISSED" not in text and "7.0 s" in text
    assert "MISSED" in defence.table({**result, "goal_95_met": False})
