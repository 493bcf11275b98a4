"""Pure parts of the portal and the report: the rate limiter's windows, the SVG charts' marks and escaping."""

from __future__ import annotations

import re

from orchestrator.analytics import charts
from orchestrator.collector.portal_auth import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_refuses_over_the_limit_until_the_window_passes() -> None:
    clock = Clock()
    limiter = RateLimiter(3, window=60, clock=clock)
    assert [limiter.hit("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.blocked("a") and not limiter.blocked("b") and limiter.hit("b")
    clock.now += 59.9
    assert not limiter.hit("a")
    clock.now += 0.1
    assert limiter.hit("a") and not limiter.blocked("a")


def test_limiter_memory_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(1, window=60, max_keys=100, clock=clock)
    for i in range(1000):
        assert limiter.hit(f"k{i}")
    assert len(limiter._hits) <= 100


def test_stacked_days_draws_one_bar_per_severity_and_day() -> None:
    svg = str(charts.stacked_days([("2026-11-01", {"high": 3, "low": 1}), ("2026-11-02", {})], "Alerts"))
    assert svg.startswith("<svg") and svg.count('class="bar"') == 2
    assert re.search(r'data-value="3"', svg) and "11-01" in svg and "11-02" in svg


def test_empty_chart_says_so() -> None:
    assert "No alerts in this period" in str(charts.stacked_days([("2026-11-01", {})], "Alerts"))
    assert "Nothing to show" in str(charts.horizontal_bars([], "Sources"))


def test_chart_text_is_escaped() -> None:
    svg = str(charts.horizontal_bars([("<script>alert(1)</script>", 5.0)], "A & B"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "A &amp; B" in svg


def test_axis_maximum_is_round() -> None:
    assert [charts._nice_max(v) for v in (0, 0.7, 1, 3, 7, 12, 999)] == [1, 1, 1, 5, 10, 20, 1000]
