"""Pure parts of the portal and the report: the rate limiter's windows, the figure cache, the SVG charts' marks
and escaping."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from orchestrator.analytics import charts
from orchestrator.collector.figure_cache import TTLCache
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


def test_figure_cache_serves_for_its_ttl_then_recomputes() -> None:
    clock = Clock()
    cache: TTLCache[int] = TTLCache(ttl=60, clock=clock)
    calls: list[str] = []

    def compute(v: int) -> Callable[[], int]:
        return lambda: calls.append("x") or v  # type: ignore[func-returns-value]

    assert cache.get(("acme", "2026-11", None), compute(1)) == 1
    assert cache.get(("acme", "2026-11", None), compute(2)) == 1 and len(calls) == 1
    assert cache.get(("rival", "2026-11", None), compute(3)) == 3  # another client: its own entry
    clock.now += 60
    assert cache.get(("acme", "2026-11", None), compute(4)) == 4 and len(calls) == 3


def test_figure_cache_computes_once_for_concurrent_callers() -> None:
    cache: TTLCache[int] = TTLCache(ttl=60)
    started, release, calls = threading.Event(), threading.Event(), []

    def slow() -> int:
        calls.append(1)
        started.set()
        release.wait(5)
        return 7

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(5)]
    for t in threads:
        t.start()
    assert started.wait(5)
    release.set()
    for t in threads:
        t.join(5)
    assert results == [7] * 5 and calls == [1]


def test_figure_cache_is_bounded() -> None:
    cache: TTLCache[int] = TTLCache(ttl=60, max_entries=10)
    for i in range(100):
        cache.get(i, lambda i=i: i)  # type: ignore[misc]
    assert len(cache._entries) <= 10 and len(cache._locks) <= 11
