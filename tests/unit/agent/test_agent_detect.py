from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from sentry_agent.detect import Detector, parse_ip
from sentry_agent.rules import Rule

IP = "203.0.113.7"
LINE = f"LOGIN FAILED user=bob ip={IP}"

MakeRule = Callable[..., Rule]


def feed_at(det: Detector, times: list[float], line: str = LINE, source: str = "game") -> list[Any]:
    found: list[Any] = []
    for t in times:
        found += det.feed(source, line, t)
    return found


def test_threshold_minus_one_does_not_ban_threshold_does(make_rule: MakeRule) -> None:
    det = Detector([make_rule(threshold=3, window_seconds=10)])
    assert feed_at(det, [0.0, 1.0]) == []
    (hit,) = det.feed("game", LINE, 2.0)
    assert hit.ip == ipaddress.ip_address(IP)
    assert hit.count == 3
    assert hit.rule.id == "game-bruteforce"
    assert hit.source == "game"


def test_window_edges(make_rule: MakeRule) -> None:
    rule = make_rule(threshold=3, window_seconds=10)
    # Spanning just under the window: banned.
    assert len(feed_at(Detector([rule]), [0.0, 5.0, 9.999])) == 1
    # Spanning exactly the window: the first match has left it.
    assert feed_at(Detector([rule]), [0.0, 5.0, 10.0]) == []
    # Spread out wider than the window: never three inside it...
    det = Detector([rule])
    assert feed_at(det, [0.0, 6.0, 12.0, 18.0]) == []
    # ...until the window slides over three close matches (12, 18, 19).
    assert len(det.feed("game", LINE, 19.0)) == 1


def test_one_ban_per_ban_period_then_counting_starts_afresh(make_rule: MakeRule) -> None:
    det = Detector([make_rule(threshold=3, window_seconds=10, ban_seconds=100)])
    assert len(feed_at(det, [0.0, 1.0, 2.0])) == 1
    # Banned at t=2 until t=102: further lines are matched but trigger nothing.
    assert feed_at(det, [float(t) for t in range(3, 102)]) == []
    # After expiry the old hits do not count: threshold again from zero.
    assert feed_at(det, [102.0, 103.0]) == []
    assert len(det.feed("game", LINE, 104.0)) == 1
    assert det.matches()["game-bruteforce"] == 3 + 99 + 3


def test_forget_lets_the_next_threshold_retry(make_rule: MakeRule) -> None:
    det = Detector([make_rule(threshold=2, window_seconds=10, ban_seconds=100)])
    assert len(feed_at(det, [0.0, 1.0])) == 1
    det.forget("game-bruteforce", ipaddress.ip_address(IP))
    assert feed_at(det, [2.0]) == []
    assert len(feed_at(det, [3.0])) == 1


def test_addresses_and_rules_are_counted_independently(make_rule: MakeRule) -> None:
    other = make_rule(id="any-failure", pattern=re.compile(r"FAILED .*ip=(?P<ip>\S+)"), threshold=2)
    det = Detector([make_rule(threshold=3), other])
    found = feed_at(det, [0.0, 1.0], line="LOGIN FAILED user=a ip=198.51.100.1")
    assert [d.rule.id for d in found] == ["any-failure"]
    found = feed_at(det, [2.0, 3.0], line="LOGIN FAILED user=a ip=198.51.100.2")
    assert [d.rule.id for d in found] == ["any-failure"]
    # 198.51.100.1 reaches the stricter rule's threshold on its own third line.
    found = det.feed("game", "LOGIN FAILED user=a ip=198.51.100.1", 4.0)
    assert [(d.rule.id, str(d.ip)) for d in found] == [("game-bruteforce", "198.51.100.1")]


def test_rules_only_see_their_own_source(make_rule: MakeRule) -> None:
    det = Detector([make_rule(threshold=1)])
    assert det.feed("sshd", LINE, 0.0) == []
    assert det.matches()["game-bruteforce"] == 0
    assert len(det.feed("game", LINE, 0.0)) == 1


def test_invalid_ips_are_ignored_and_counted(make_rule: MakeRule) -> None:
    det = Detector([make_rule(threshold=1)])
    assert det.feed("game", "LOGIN FAILED user=bob ip=999.1.1.1", 0.0) == []
    assert det.feed("game", "LOGIN FAILED user=bob ip=1.2.3.", 0.0) == []
    assert det.invalid_ips() == {"game-bruteforce": 2}
    assert det.matches() == {"game-bruteforce": 2}


def test_ipv6_and_ipv4_mapped_addresses(make_rule: MakeRule) -> None:
    det = Detector([make_rule(threshold=2)])
    # The same client seen as v4 and v4-mapped v6 is one address, banned in the v4 set.
    found = feed_at(det, [0.0], line="LOGIN FAILED user=a ip=::ffff:192.0.2.9")
    found += feed_at(det, [1.0], line="LOGIN FAILED user=a ip=192.0.2.9")
    assert [d.ip for d in found] == [ipaddress.IPv4Address("192.0.2.9")]
    (hit,) = feed_at(det, [2.0, 3.0], line="LOGIN FAILED user=a ip=2001:DB8::1")
    assert hit.ip == ipaddress.IPv6Address("2001:db8::1")
    assert parse_ip(" 2001:db8::1 ") == ipaddress.IPv6Address("2001:db8::1")
    assert parse_ip("not-an-ip") is None


def test_prune_forgets_stale_state(make_rule: MakeRule) -> None:
    det = Detector([make_rule(threshold=3, window_seconds=10, ban_seconds=100)])
    for i in range(50):
        det.feed("game", f"LOGIN FAILED user=a ip=198.51.100.{i}", 0.0)
    feed_at(det, [0.0, 0.0, 0.0], line="LOGIN FAILED user=a ip=192.0.2.1")  # banned until 100
    assert det.tracked == 51
    det.prune(9.0)
    assert det.tracked == 51
    det.prune(10.0)
    assert det.tracked == 1  # only the ban remains
    det.prune(100.0)
    assert det.tracked == 0
