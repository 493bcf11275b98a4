from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sentry_agent import default_rules_path
from sentry_agent.config import RuleOverride, Source
from sentry_agent.rules import RulesError, load_rules, parse_rules


def rule_dict(**overrides: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "r1",
        "source": "game",
        "pattern": r"LOGIN FAILED user=\S+ ip=(?P<ip>\S+)",
        "threshold": 5,
        "window_seconds": 60,
        "ban_seconds": 600,
    }
    rule.update(overrides)
    return rule


def doc(*rules: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": "t1", "rules": list(rules) or [rule_dict()], **top}


def test_shipped_rules_are_valid_and_match_real_log_lines() -> None:
    rules = load_rules(default_rules_path())
    assert rules.version
    assert not rules.self_test_fail, "the shipped rules must never carry the fault-injection hook"
    by_id = {r.id: r for r in rules.rules}
    game = by_id["game-bruteforce"].pattern
    m = game.search("2026-11-23T10:00:00Z LOGIN FAILED user=bob ip=203.0.113.7")
    assert m is not None and m.group("ip") == "203.0.113.7"
    ssh = by_id["ssh-bruteforce"].pattern
    prefix = "Nov 23 10:00:00 h sshd[812]: Failed password for"
    lines = {
        f"{prefix} invalid user admin from 198.51.100.9 port 5214 ssh2": "198.51.100.9",
        f"{prefix} root from 2001:db8::5 port 22 ssh2": "2001:db8::5",
    }
    for line, ip in lines.items():
        m = ssh.search(line)
        assert m is not None and ipaddress.ip_address(m.group("ip")) == ipaddress.ip_address(ip)
    accepted = "Nov 23 10:00:00 h sshd[812]: Accepted password for bob from 10.0.0.1 port 22 ssh2"
    assert ssh.search(accepted) is None


def test_parses_fields_and_compiles_pattern() -> None:
    rules = parse_rules(doc(rule_dict(threshold=3, window_seconds=30, ban_seconds=90)))
    (rule,) = rules.rules
    assert (rule.id, rule.source, rule.threshold, rule.window_seconds, rule.ban_seconds) == (
        "r1",
        "game",
        3,
        30,
        90,
    )
    assert rules.version == "t1"
    assert rule.pattern.search("LOGIN FAILED user=x ip=1.2.3.4") is not None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (rule_dict(pattern="LOGIN ((ip"), "rule r1: pattern: does not compile"),
        (rule_dict(pattern=r"ip=(\S+)"), "rule r1: pattern: must define a named group (?P<ip>...)"),
        (rule_dict(pattern=r"ip=(?P<addr>\S+)"), "rule r1: pattern: must define a named group (?P<ip>...)"),
        (rule_dict(threshold=0), "rule r1: threshold: must be between 1 and"),
        (rule_dict(window_seconds=-5), "rule r1: window_seconds: must be between 1 and"),
        (rule_dict(ban_seconds="600"), "rule r1: ban_seconds: must be a positive integer, got '600'"),
        (rule_dict(threshold=True), "rule r1: threshold: must be a positive integer, got True"),
        (rule_dict(threshold=2.5), "rule r1: threshold: must be a positive integer, got 2.5"),
        (rule_dict(source=""), "rule r1: source: must be a non-empty string"),
        (rule_dict(tresholds=3), "rule r1: tresholds: unknown key"),
        (rule_dict(id="has space"), "rules[0].id: must match"),
        (rule_dict(severity="urgent"), "rule r1: severity: must be one of low, medium, high, critical"),
    ],
)
def test_rule_validation_errors_name_rule_and_key(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(doc(rule))
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "rules file must be a JSON object"),
        ({"rules": [rule_dict()]}, "version: must be a non-empty string"),
        ({"version": "v", "rules": []}, "rules: must be a non-empty list"),
        (doc(self_test="maybe"), "self_test: must be 'pass' or 'fail'"),
        (doc(extra=1), "extra: unknown top-level key"),
        (doc(rule_dict(), rule_dict()), "rules[1].id: duplicate rule id 'r1'"),
    ],
)
def test_top_level_validation_errors(data: object, message: str) -> None:
    with pytest.raises(RulesError, match="^" + re.escape(message)):
        parse_rules(data)


def test_overrides_replace_only_given_numbers() -> None:
    data = doc(rule_dict(), rule_dict(id="r2"))
    rules = parse_rules(data, {"r1": RuleOverride(threshold=3)})
    r1, r2 = rules.rules
    assert (r1.threshold, r1.window_seconds, r1.ban_seconds) == (3, 60, 600)
    assert (r2.threshold, r2.window_seconds, r2.ban_seconds) == (5, 60, 600)


def test_override_for_unknown_rule_is_an_error() -> None:
    with pytest.raises(RulesError, match=r"^rule_overrides\.r9: no such rule"):
        parse_rules(doc(), {"r9": RuleOverride(threshold=3)})


def test_override_above_limit_is_an_error() -> None:
    with pytest.raises(RulesError, match=r"^rule_overrides\.r1\.window_seconds: must be at most"):
        parse_rules(doc(), {"r1": RuleOverride(window_seconds=10**9)})


def test_self_test_fail_is_parsed() -> None:
    assert parse_rules(doc(self_test="fail")).self_test_fail
    assert not parse_rules(doc(self_test="pass")).self_test_fail


def test_split_active_inactive_by_configured_sources() -> None:
    rules = parse_rules(doc(rule_dict(), rule_dict(id="ssh", source="sshd")))
    active, inactive = rules.split([Source("game", Path("/var/log/game.log"))])
    assert [r.id for r in active] == ["r1"]
    assert [r.id for r in inactive] == ["ssh"]


def test_load_rules_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"^cannot read rules"):
        load_rules(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "1", "rules": [', encoding="utf-8")
    with pytest.raises(RulesError, match="is not valid JSON"):
        load_rules(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc()), encoding="utf-8")
    assert load_rules(good).rules[0].id == "r1"


def test_severity_is_optional_medium_by_default_and_survives_overrides() -> None:
    rules = parse_rules(doc(rule_dict(), rule_dict(id="r2", severity="critical")), {"r2": RuleOverride(threshold=2)})
    assert [(r.id, r.severity, r.threshold) for r in rules.rules] == [("r1", "medium", 5), ("r2", "critical", 2)]
