from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from sentry_agent.health import HealthState
from sentry_agent.httpd import HealthServer
from sentry_agent.metrics import Registry

from .agent_helpers import FakeClock, parse_exposition

HEALTH_KEYS = {
    "status",
    "version",
    "rules_version",
    "uptime_seconds",
    "last_error",
    "last_error_at",
    "client",
    "host",
    "tier",
    "rules",
}


def make_health(clock: FakeClock, self_test_fail: bool = False) -> HealthState:
    return HealthState(
        version="1.2.3",
        rules_version="2026.11.1",
        client="acme",
        host="game-01",
        tier="professional",
        active_rules=["game-bruteforce"],
        inactive_rules=["ssh-bruteforce"],
        self_test_fail=self_test_fail,
        clock=clock,
        wall_clock=lambda: 1_800_000_000.0,
    )


def fetch(url: str, method: str = "GET") -> tuple[int, str, str]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


@pytest.fixture
def served(clock: FakeClock) -> Iterator[tuple[str, HealthState, Registry]]:
    health = make_health(clock)
    registry = Registry()
    lines = registry.counter("sentry_agent_lines_total", "Lines read per log source.", ("source",))
    lines.inc("game", amount=7)
    server = HealthServer("127.0.0.1", 0, health, registry, poll_interval=0.01)
    server.start()
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    try:
        yield f"http://{host}:{port}", health, registry
    finally:
        server.stop()


def test_healthz_ok(served: tuple[str, HealthState, Registry], clock: FakeClock) -> None:
    url, _, _ = served
    clock.advance(12.5)
    code, ctype, body = fetch(url + "/healthz")
    assert code == 200 and ctype == "application/json"
    doc = json.loads(body)
    assert set(doc) == HEALTH_KEYS
    assert doc["status"] == "ok"
    assert (doc["version"], doc["rules_version"]) == ("1.2.3", "2026.11.1")
    assert (doc["client"], doc["host"], doc["tier"]) == ("acme", "game-01", "professional")
    assert doc["uptime_seconds"] == 12.5
    assert doc["last_error"] is None and doc["last_error_at"] is None
    assert doc["rules"] == {"active": ["game-bruteforce"], "inactive": ["ssh-bruteforce"]}


def test_healthz_degraded_for_five_minutes_after_an_error(
    served: tuple[str, HealthState, Registry], clock: FakeClock
) -> None:
    url, health, _ = served
    health.record_error("ban of 203.0.113.7 failed:\nnft exited 1")
    code, _, body = fetch(url + "/healthz")
    doc = json.loads(body)
    assert (code, doc["status"]) == (200, "degraded")
    assert doc["last_error"] == "ban of 203.0.113.7 failed: nft exited 1"
    assert doc["last_error_at"] == "2027-01-15T08:00:00.000Z"
    clock.advance(299)
    assert json.loads(fetch(url + "/healthz")[2])["status"] == "degraded"
    clock.advance(1)
    doc = json.loads(fetch(url + "/healthz")[2])
    assert doc["status"] == "ok"
    assert doc["last_error"] == "ban of 203.0.113.7 failed: nft exited 1"  # still shown, no longer degrading


def test_healthz_failing_when_the_release_self_test_fails(clock: FakeClock) -> None:
    failing = make_health(clock, self_test_fail=True)
    server = HealthServer("127.0.0.1", 0, failing, Registry(), poll_interval=0.01)
    server.start()
    try:
        host, port = server.address
        code, _, body = fetch(f"http://{host}:{port}/healthz")
    finally:
        server.stop()
    assert code == 503
    assert json.loads(body)["status"] == "failing"


def test_metrics_endpoint(served: tuple[str, HealthState, Registry]) -> None:
    url, _, _ = served
    code, ctype, body = fetch(url + "/metrics")
    assert code == 200
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    families = parse_exposition(body)
    assert families["sentry_agent_lines_total"]["type"] == "counter"
    assert families["sentry_agent_lines_total"]["samples"] == {'source="game"': 7.0}


@pytest.mark.parametrize(("path", "method"), [("/", "GET"), ("/healthz/x", "GET"), ("/metric", "GET"),
                                              ("/healthz", "POST"), ("/metrics", "DELETE")])  # fmt: skip
def test_everything_else_is_404(served: tuple[str, HealthState, Registry], path: str, method: str) -> None:
    url, _, _ = served
    assert fetch(url + path, method)[0] == 404


def test_query_string_is_ignored(served: tuple[str, HealthState, Registry]) -> None:
    url, _, _ = served
    assert fetch(url + "/healthz?verbose=1")[0] == 200


def test_serves_on_ipv6_loopback(clock: FakeClock) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = HealthServer("::1", 0, make_health(clock), Registry(), poll_interval=0.01)
    server.start()
    try:
        _, port = server.address
        assert fetch(f"http://[::1]:{port}/healthz")[0] == 200
    finally:
        server.stop()


def test_label_values_and_help_are_escaped() -> None:
    registry = Registry()
    counter = registry.counter("odd_total", "Help with \\ and\nnewline.", ("source",))
    counter.inc('we"ird\\na\nme', amount=2.5)
    counter.declare("plain")
    text = registry.render()
    assert 'odd_total{source="we\\"ird\\\\na\\nme"} 2.5' in text
    assert "# HELP odd_total Help with \\\\ and\\nnewline." in text
    families = parse_exposition(text)
    assert families["odd_total"]["samples"]['source="plain"'] == 0.0


def test_parser_rejects_malformed_exposition() -> None:
    # The checker above must be able to fail, or the format tests prove nothing.
    for bad in [
        "x_total 1\n",  # no HELP/TYPE
        "# HELP x_total h\n# TYPE x_total counter\nx_total{a=b} 1\n",  # unquoted label
        "# HELP x_total h\n# TYPE x_total counter\nx_total 1",  # no final newline
        "# HELP x h\n# TYPE x gauge\n# HELP x h\n# TYPE x gauge\n",  # family twice
    ]:
        with pytest.raises(AssertionError):
            parse_exposition(bad)


def test_counters_refuse_to_go_down() -> None:
    counter = Registry().counter("c_total", "c")
    with pytest.raises(ValueError, match="only go up"):
        counter.inc(amount=-1)
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc("unexpected")
