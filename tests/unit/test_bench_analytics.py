"""The analytics benchmark's pure parts: the percentile, the goals, the table, and the data it generates."""

from __future__ import annotations

import random

import pytest

from bench import analytics


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert analytics.percentile(values, 95) == 95.0
    assert analytics.percentile(values, 50) == 50.0
    assert analytics.percentile([3.0, 1.0, 2.0], 100) == 3.0
    assert analytics.percentile([7.0], 95) == 7.0
    assert analytics.percentile([], 95) is None


@pytest.mark.parametrize(
    ("report_s", "p95", "met"),
    [(9.9, 299.0, (True, True)), (10.1, 301.0, (False, False)), (None, None, (None, None))],
)
def test_goals(report_s: float | None, p95: float | None, met: tuple[bool | None, bool | None]) -> None:
    summary = analytics.summarize({"sqlite": {"alerts": 1, "insert_s": 1.0, "report_s": report_s, "page_p95_ms": p95}})
    row = summary["backends"]["sqlite"]
    assert (row["report_meets_goal"], row["page_meets_goal"]) == met
    assert summary["goals"] == {"report_s": 10.0, "page_p95_ms": 300.0}


def test_table_names_missed_goals() -> None:
    summary = analytics.summarize(
        {
            "postgresql": {
                "alerts": 1_000_000,
                "insert_s": 80.0,
                "report_s": 12.5,
                "page_p50_ms": 20.0,
                "page_p95_ms": 450.0,
                "users": 20,
                "requests": 25,
                "errors": 0,
            },
        }
    )
    text = analytics.table(summary)
    assert text.count("MISSED") == 2 and "1000000" in text and "20 users x 25 pages" in text


def test_generated_alerts_stay_in_the_month_and_spread_over_hosts() -> None:
    rows = analytics.alert_rows(["a", "b"], 0, 1000, random.Random(1))
    assert {r["host"] for r in rows} == {"a", "b"} and [r["seq"] for r in rows] == list(range(1000))
    assert all(analytics.MONTH <= r["received_at"] < analytics.MONTH.replace(month=12) for r in rows)
    beats = analytics.heartbeat_rows("a")
    assert len(beats) == 30 * 86400 // analytics.HEARTBEAT_EVERY_S
    assert all(b["fw_packets"] == b["raw"]["firewall"]["banned_v4"]["packets"] for b in beats)
