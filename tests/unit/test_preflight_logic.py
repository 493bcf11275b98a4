"""Preflight verdicts from probe output: every check's edges."""

from __future__ import annotations

from orchestrator.preflight import Thresholds, evaluate, parse_probe

GOOD = "python=3.11\nos=debian 12\nsystemd=yes\nfree_kb=20971520\nbecome=root\ntime=1000.5\n"


def verdicts(text: str, t0: float = 1000.0, t1: float = 1001.0, **limits: object) -> dict[str, bool]:
    return {c.id: c.ok for c in evaluate(parse_probe(text), t0, t1, Thresholds(**limits))}  # type: ignore[arg-type]


def test_healthy_host_passes_everything() -> None:
    assert all(verdicts(GOOD).values())
    assert set(verdicts(GOOD)) == {"ssh", "python", "become", "disk", "clock", "os", "systemd"}


def test_each_failure_is_its_own_check() -> None:
    assert not verdicts(GOOD.replace("python=3.11", "python=3.7"))["python"]
    assert not verdicts(GOOD.replace("python=3.11", "python="))["python"]
    assert not verdicts(GOOD.replace("become=root", "become=no"))["become"]
    assert verdicts(GOOD.replace("become=root", "become=sudo"))["become"]
    assert not verdicts(GOOD.replace("os=debian 12", "os=ubuntu 22.04"))["os"]
    assert not verdicts(GOOD.replace("systemd=yes", "systemd=no"))["systemd"]
    assert not verdicts(GOOD.replace("free_kb=20971520", "free_kb=1024"))["disk"]
    assert verdicts(GOOD.replace("free_kb=20971520", "free_kb=1048576"), min_free_mb=1024)["disk"]


def test_clock_skew_allows_for_the_round_trip() -> None:
    # The remote read happened somewhere in [t0, t1]; only what lies beyond that counts.
    assert verdicts(GOOD.replace("time=1000.5", "time=1005.9"), max_clock_skew=5.0)["clock"]
    assert not verdicts(GOOD.replace("time=1000.5", "time=1006.1"), max_clock_skew=5.0)["clock"]
    assert not verdicts(GOOD.replace("time=1000.5", "time=994.9"), max_clock_skew=5.0)["clock"]
    assert not verdicts(GOOD.replace("time=1000.5", "time=garbage"))["clock"]
