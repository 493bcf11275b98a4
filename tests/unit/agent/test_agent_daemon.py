"""The agent wired together in-process: real files, real spool and HTTP server, injected ban and clock."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sentry_agent import default_rules_path
from sentry_agent.ban import BanError
from sentry_agent.config import AgentConfig, parse_config
from sentry_agent.daemon import Agent
from sentry_agent.detect import IPAddress
from sentry_agent.firewall import FirewallError, FirewallStats
from sentry_agent.rules import RuleSet, parse_rules
from sentry_agent.spool import iter_records

from .agent_helpers import FakeClock, append, failed_logins, parse_exposition

RULES: dict[str, Any] = {
    "version": "test-rules-7",
    "rules": [
        {
            "id": "game-bruteforce",
            "source": "game",
            "pattern": r"LOGIN FAILED user=\S+ ip=(?P<ip>[0-9a-fA-F:.]+)",
            "threshold": 5,
            "window_seconds": 60,
            "ban_seconds": 600,
        },
        {
            "id": "ssh-bruteforce",
            "source": "sshd",
            "pattern": r"Failed password for \S+ from (?P<ip>\S+)",
            "threshold": 5,
            "window_seconds": 60,
            "ban_seconds": 600,
        },
    ],
}


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[IPAddress, int]] = []
        self.fail = fail

    def __call__(self, addr: IPAddress, seconds: int) -> None:
        self.calls.append((addr, seconds))
        if self.fail is not None:
            raise self.fail


def build(config_dict: dict[str, Any], **changes: Any) -> tuple[AgentConfig, RuleSet]:
    data = {**config_dict, "ban_command_enabled": True, **changes}
    config = parse_config(data)
    return config, parse_rules(RULES, config.rule_overrides)


@pytest.fixture
def log_path(config_dict: dict[str, Any]) -> Path:
    path = Path(config_dict["sources"][0]["path"])
    path.write_text("old history LOGIN FAILED user=x ip=198.51.100.1\n" * 10, encoding="utf-8")
    return path


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def agent(
    config_dict: dict[str, Any],
    log_path: Path,
    recorder: Recorder,
    clock: FakeClock,
) -> Iterator[Agent]:
    config, rules = build(config_dict, rule_overrides={"game-bruteforce": {"threshold": 3}})
    agent = Agent(config, rules, "1.0.0-test", ban_func=recorder, clock=clock)
    agent.start()
    try:
        yield agent
    finally:
        agent.shutdown()


def records(agent: Agent, kind: str) -> list[dict[str, Any]]:
    return [r for r in iter_records(agent.config.spool_dir) if r["type"] == kind]


def metric(agent: Agent, name: str, labels: str = "") -> float:
    value: float = parse_exposition(agent.registry.render())[name]["samples"][labels]
    return value


def test_threshold_bans_once_and_spools_one_alert(agent: Agent, recorder: Recorder, log_path: Path) -> None:
    append(log_path, failed_logins("203.0.113.7", 2))
    agent.run_once()
    assert recorder.calls == []  # history before start is not judged, two new lines are below threshold 3
    append(log_path, failed_logins("203.0.113.7", 1))
    agent.run_once()
    assert recorder.calls == [(ipaddress.ip_address("203.0.113.7"), 600)]
    append(log_path, failed_logins("203.0.113.7", 7))
    agent.run_once()
    assert len(recorder.calls) == 1

    (alert,) = records(agent, "alert")
    assert (alert["action"], alert["severity"]) == ("banned", "medium")
    keys = ("rule", "source", "ip", "count", "threshold", "window_seconds", "ban_seconds")
    assert {k: alert[k] for k in keys} == {
        "rule": "game-bruteforce",
        "source": "game",
        "ip": "203.0.113.7",
        "count": 3,
        "threshold": 3,
        "window_seconds": 60,
        "ban_seconds": 600,
    }
    assert (alert["client"], alert["host"], alert["tier"]) == ("acme", "game-01", "professional")
    assert (alert["version"], alert["rules_version"]) == ("1.0.0-test", "test-rules-7")
    assert alert["time"].endswith("Z")
    assert metric(agent, "sentry_agent_bans_total", 'rule="game-bruteforce"') == 1
    assert metric(agent, "sentry_agent_lines_total", 'source="game"') == 10
    assert metric(agent, "sentry_agent_matches_total", 'rule="game-bruteforce"') == 10


def test_never_ban_addresses_are_suppressed(agent: Agent, recorder: Recorder, log_path: Path) -> None:
    append(log_path, failed_logins("10.9.8.7", 3) + failed_logins("127.0.0.1", 3))
    agent.run_once()
    assert recorder.calls == []
    assert [(a["ip"], a["action"]) for a in records(agent, "alert")] == [
        ("10.9.8.7", "suppressed"),
        ("127.0.0.1", "suppressed"),
    ]
    assert metric(agent, "sentry_agent_ban_suppressed_total") == 2
    assert metric(agent, "sentry_agent_bans_total", 'rule="game-bruteforce"') == 0


def test_failed_ban_degrades_health_and_is_retried(
    config_dict: dict[str, Any],
    log_path: Path,
    clock: FakeClock,
) -> None:
    failing = Recorder(fail=BanError("nft exited 1 banning 203.0.113.7: no such set"))
    config, rules = build(config_dict, rule_overrides={"game-bruteforce": {"threshold": 3}})
    agent = Agent(config, rules, "1.0.0", ban_func=failing, clock=clock)
    agent.start()
    try:
        append(log_path, failed_logins("203.0.113.7", 3))
        agent.run_once()
        (alert,) = records(agent, "alert")
        assert (alert["action"], alert["error"]) == (
            "failed",
            "nft exited 1 banning 203.0.113.7: no such set",
        )
        code, doc = agent.health.snapshot()
        assert (code, doc["status"]) == (200, "degraded")
        assert "no such set" in doc["last_error"]
        assert metric(agent, "sentry_agent_ban_errors_total") == 1
        append(log_path, failed_logins("203.0.113.7", 3))
        agent.run_once()
        assert len(failing.calls) == 2  # not left unbanned for the whole ban period
    finally:
        agent.shutdown()


def test_heartbeats_on_start_interval_and_stop(
    config_dict: dict[str, Any],
    log_path: Path,
    clock: FakeClock,
    recorder: Recorder,
) -> None:
    config, rules = build(config_dict, heartbeat_interval_seconds=30)
    agent = Agent(config, rules, "1.0.0", ban_func=recorder, clock=clock)
    agent.start()
    append(log_path, "unrelated line\n")
    agent.run_once()
    clock.advance(29.9)
    agent.run_once()
    assert [h["event"] for h in records(agent, "heartbeat")] == ["start"]
    clock.advance(0.1)
    agent.run_once()
    agent.shutdown()
    beats = records(agent, "heartbeat")
    assert [h["event"] for h in beats] == ["start", "interval", "stop"]
    assert beats[1]["counters"]["lines"] == {"game": 1}
    assert beats[1]["uptime_seconds"] == 30.0
    assert beats[1]["status"] == "ok"
    assert set(beats[1]["counters"]) == {
        "lines",
        "matches",
        "invalid_ips",
        "bans",
        "ban_suppressed",
        "ban_errors",
        "spool_dropped",
    }


def test_restart_neither_rereads_nor_misses_lines(
    config_dict: dict[str, Any],
    log_path: Path,
    clock: FakeClock,
    recorder: Recorder,
) -> None:
    config, rules = build(config_dict)
    first = Agent(config, rules, "1.0.0", ban_func=recorder, clock=clock)
    first.start()
    append(log_path, failed_logins("203.0.113.7", 4))
    first.run_once()
    first.shutdown()
    append(log_path, failed_logins("203.0.113.8", 2))  # while the agent is down

    second = Agent(config, rules, "1.0.0", ban_func=recorder, clock=clock)
    second.start()
    try:
        assert metric(second, "sentry_agent_lines_total", 'source="game"') == 2
        append(log_path, failed_logins("203.0.113.8", 3))
        second.run_once()
        assert metric(second, "sentry_agent_lines_total", 'source="game"') == 5
        assert [str(ip) for ip, _ in recorder.calls] == ["203.0.113.8"]
    finally:
        second.shutdown()


def test_health_and_metrics_served_by_the_agent(agent: Agent, log_path: Path) -> None:
    assert agent.http is not None
    host, port = agent.http.address
    with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=20) as resp:
        doc = json.loads(resp.read())
    assert doc["status"] == "ok"
    assert doc["rules"] == {"active": ["game-bruteforce"], "inactive": ["ssh-bruteforce"]}
    assert (doc["version"], doc["rules_version"]) == ("1.0.0-test", "test-rules-7")
    append(log_path, "LOGIN FAILED user=x ip=300.1.2.3\n")
    agent.run_once()
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=20) as resp:
        families = parse_exposition(resp.read().decode())
    expected = {
        "sentry_agent_lines_total": ("counter", {'source="game"': 1}),
        "sentry_agent_matches_total": ("counter", {'rule="game-bruteforce"': 1}),
        "sentry_agent_invalid_ips_total": ("counter", {'rule="game-bruteforce"': 1}),
        "sentry_agent_bans_total": ("counter", {'rule="game-bruteforce"': 0}),
        "sentry_agent_ban_suppressed_total": ("counter", {"": 0}),
        "sentry_agent_ban_errors_total": ("counter", {"": 0}),
        "sentry_agent_spool_dropped_total": ("counter", {'type="alert"': 0, 'type="heartbeat"': 0}),
        "sentry_agent_info": ("gauge", {'version="1.0.0-test",rules_version="test-rules-7"': 1}),
    }
    for name, (kind, samples) in expected.items():
        assert families[name]["type"] == kind
        assert families[name]["samples"] == samples, name
    assert families["sentry_agent_spool_bytes"]["samples"][""] == agent.spool.size_bytes > 0
    assert families["sentry_agent_uptime_seconds"]["type"] == "gauge"


def test_unreadable_source_is_an_error_not_a_crash(
    config_dict: dict[str, Any],
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    directory = tmp_path / "not-a-file"
    directory.mkdir()
    config, rules = build(config_dict, sources=[{"name": "game", "path": str(directory)}])
    agent = Agent(config, rules, "1.0.0", ban_func=Recorder(), clock=clock)
    agent.start()
    try:
        agent.run_once()
        assert agent.health.status() == "degraded"
        assert agent.health.last_error is not None and "source game: cannot read" in agent.health.last_error
    finally:
        agent.shutdown()


def test_every_record_carries_its_idempotency_key(
    config_dict: dict[str, Any], log_path: Path, clock: FakeClock, recorder: Recorder
) -> None:
    config, rules = build(config_dict, rule_overrides={"game-bruteforce": {"threshold": 3}})
    first = Agent(config, rules, "1.0.0", ban_func=recorder, clock=clock, firewall_stats=lambda: FirewallStats(0))
    first.start()
    append(log_path, failed_logins("203.0.113.7", 3))
    first.run_once()
    first.shutdown()
    second = Agent(config, rules, "1.0.0", ban_func=recorder, clock=clock, firewall_stats=lambda: FirewallStats(0))
    second.start()
    second.shutdown()
    written = list(iter_records(config.spool_dir))
    by_boot: dict[str, list[int]] = {}
    for r in written:
        assert re.fullmatch(r"[0-9a-f]{32}", r["boot"])
        by_boot.setdefault(r["boot"], []).append(r["seq"])
    assert list(by_boot) == [first.boot, second.boot] and first.boot != second.boot
    assert by_boot[first.boot] == [0, 1, 2]  # start heartbeat, alert, stop heartbeat: in write order
    assert by_boot[second.boot] == [0, 1]


def test_heartbeat_reports_what_the_fleet_view_needs(
    config_dict: dict[str, Any], log_path: Path, clock: FakeClock, recorder: Recorder
) -> None:
    stats = FirewallStats(bans_active=2, counters={"banned_v4": {"packets": 7, "bytes": 420}})
    config, rules = build(config_dict, heartbeat_interval_seconds=15)
    agent = Agent(config, rules, "1.0.0", ban_func=recorder, clock=clock, firewall_stats=lambda: stats)
    agent.start()
    agent.shutdown()
    beat = records(agent, "heartbeat")[0]
    assert beat["interval_seconds"] == 15
    assert beat["rules_digest"] == hashlib.sha256(default_rules_path().read_bytes()).hexdigest()
    assert beat["bans_active"] == 2 and beat["firewall"] == {"banned_v4": {"packets": 7, "bytes": 420}}
    assert beat["dropped"] == {"alert": 0, "heartbeat": 0}
    assert beat["quarantined"] == 0 and beat["spool_records"] == 0 and beat["spool_bytes"] == 0
    assert beat["shipper"] is None  # no collector_url: shipping disabled


def test_heartbeat_without_readable_firewall_says_null(
    config_dict: dict[str, Any], log_path: Path, clock: FakeClock, recorder: Recorder
) -> None:
    def broken() -> FirewallStats:
        raise FirewallError("nft timed out after 5s listing the firewall table")

    config, rules = build(config_dict)
    agent = Agent(config, rules, "1.0.0", ban_func=recorder, clock=clock, firewall_stats=broken)
    agent.start()
    agent.shutdown()
    beat = records(agent, "heartbeat")[0]
    assert beat["bans_active"] is None and beat["firewall"] is None
    assert beat["status"] == "ok"  # heartbeats go on; the firewall's own health is audited elsewhere
