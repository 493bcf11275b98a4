"""What a pack must pass before it is signed: the agent's rules parser, bounded regex matching time (the rule
named, within a bounded time, for a catastrophic pattern), blocklist entries, and the networks Sentry needs."""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import paths
from orchestrator.defence.errors import DefenceInputError
from orchestrator.defence.pack import BlocklistEntry
from orchestrator.defence.validate import check_protected, check_rules, parse_blocklist, parse_expiry

AGENT = paths.project_root() / "agent"
NOW = dt.datetime(2026, 12, 7, 19, 0, tzinfo=dt.UTC)


def shipped_rules() -> dict[str, Any]:
    return dict(json.loads((AGENT / "rules" / "rules.json").read_text()))


def with_pattern(pattern: str, rule_id: str = "evil") -> dict[str, Any]:
    rules = shipped_rules()
    rules["rules"] = [*rules["rules"], {**rules["rules"][0], "id": rule_id, "pattern": pattern}]
    return rules


def test_the_shipped_rules_pass_quickly() -> None:
    began = time.monotonic()
    assert check_rules(shipped_rules(), AGENT) == ("2026.12.1", 2)
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("pattern", [r"x=(?P<ip>(a+)+)$", r"x=(?P<ip>(a|aa)+)$", r"user (?P<ip>(\w+\s?)+)$"])
def test_a_catastrophic_pattern_is_refused_naming_the_rule_in_bounded_time(pattern: str) -> None:
    began = time.monotonic()
    with pytest.raises(DefenceInputError, match=r"^rule evil: .*catastrophic backtracking"):
        check_rules(with_pattern(pattern), AGENT, rule_seconds=2.0)
    # The probe is killed at the rule's bound (2 s) at the latest; startup and the other rules are quick.
    assert time.monotonic() - began < 8


def test_a_search_that_never_ends_is_killed_and_named() -> None:
    # Nothing short of a huge line makes this slow, but each search then takes far more than the bound.
    began = time.monotonic()
    with pytest.raises(DefenceInputError, match=r"^rule slowpoke: "):
        check_rules(with_pattern(r"(?P<ip>\d+\.\d+\.\d+\.\d+)", "slowpoke"), AGENT, slow_seconds=30, rule_seconds=1)
    assert time.monotonic() - began < 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["rules"][0].update(threshold=0), "rule game-bruteforce: threshold"),
        (lambda r: r["rules"][0].update(window_seconds=10**9), "rule game-bruteforce: window_seconds"),
        (lambda r: r["rules"][0].update(pattern="no ip group"), "named group"),
        (lambda r: r["rules"][0].update(pattern="(unclosed"), "does not compile"),
        (lambda r: r.update(colour="red"), "unknown top-level key"),
        (lambda r: r.update(self_test="maybe"), "self_test"),
    ],
)
def test_rules_go_through_the_agents_own_parser(change: Any, message: str) -> None:
    rules = copy.deepcopy(shipped_rules())
    change(rules)
    with pytest.raises(DefenceInputError, match=message) as caught:
        check_rules(rules, AGENT)
    assert "\n" not in str(caught.value)


def entry(net: str, expires: object = "7d", **extra: Any) -> dict[str, Any]:
    return {"net": net, "expires": expires, **extra}


def test_blocklist_entries_are_canonical_and_sorted() -> None:
    parsed = parse_blocklist(
        [entry("2001:db8::/32", "2026-12-14T00:00:00+02:00"), entry("203.0.113.7", comment="one host")], NOW
    )
    assert parsed == (
        BlocklistEntry("203.0.113.7/32", NOW + dt.timedelta(days=7), "one host"),
        BlocklistEntry("2001:db8::/32", dt.datetime(2026, 12, 13, 22, 0, tzinfo=dt.UTC), None),
    )
    assert parse_expiry("90m", NOW, "x") == NOW + dt.timedelta(minutes=90)
    assert parse_expiry({"expires_at": 1}.get("x", "2w"), NOW, "x") == NOW + dt.timedelta(weeks=2)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([entry("203.0.113.1/24")], r"blocklist\[0\]: net .*host bits"),
        ([entry("not-a-net")], r"blocklist\[0\]: net 'not-a-net'"),
        ([entry("0.0.0.0/0")], "wider than /8"),
        ([entry("::/0")], "wider than /16"),
        ([entry("127.0.0.0/24")], "loopback"),
        ([entry("::1")], "loopback"),
        ([entry("169.254.1.0/24")], "link-local"),
        ([entry("fe80::/64")], "link-local"),
        ([entry("0.0.0.0/32")], "unspecified"),
        ([entry("203.0.113.0/24", "2026-12-01T00:00:00Z")], "not in the future"),
        ([entry("203.0.113.0/24", "91d")], "more than 90 days"),
        ([entry("203.0.113.0/24", "soon")], "duration such as 7d"),
        ([entry("203.0.113.0/24", "2026-12-14T00:00:00")], "no time zone"),
        ([{"net": "203.0.113.0/24"}], "give its expiry"),
        ([entry("203.0.113.0/24", comment="x" * 201)], "comment"),
        ([entry("203.0.113.0/24", colour="red")], "unknown key 'colour'"),
        ([entry("203.0.113.0/24"), entry("198.51.100.0/24"), entry("203.0.113.0/24")], "203.0.113.0/24.* repeats"),
        ([entry("10.0.0.0/8"), entry("10.1.0.0/16"), entry("10.200.3.0/24")], r"10\.1\.0\.0/16\) overlaps"),
        ([entry("10.0.0.0/8"), entry("10.9.0.0/16"), entry("10.200.3.0/24")], r"overlaps"),
        (["203.0.113.0/24"], "must be a mapping"),
        ("203.0.113.0/24", "must be a list"),
    ],
)
def test_bad_blocklist_entries_are_named(entries: Any, message: str) -> None:
    with pytest.raises(DefenceInputError, match=message) as caught:
        parse_blocklist(entries, NOW)
    assert "\n" not in str(caught.value)


def test_at_most_ten_thousand_entries() -> None:
    many = [entry(f"10.{i // 256}.{i % 256}.0/24") for i in range(10_001)]
    with pytest.raises(DefenceInputError, match="at most 10000"):
        parse_blocklist(many, NOW)
    assert len(parse_blocklist(many[:10_000], NOW)) == 10_000


def test_an_entry_covering_a_protected_network_is_refused(tmp_path: Path) -> None:
    protected = [(ipaddress.ip_network("192.0.2.0/28"), "a management network of acme")]
    wide = parse_blocklist([entry("192.0.2.0/24")], NOW)
    with pytest.raises(DefenceInputError, match=r"192\.0\.2\.0/24 covers a management network of acme"):
        check_protected(wide, protected)
    inside = parse_blocklist([entry("192.0.2.4/30")], NOW)
    with pytest.raises(DefenceInputError, match="management network of acme"):
        check_protected(inside, protected)
    check_protected(parse_blocklist([entry("192.0.2.16/28")], NOW), protected)
