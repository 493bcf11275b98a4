"""Sliding-window detection: ``threshold`` matches from one address within ``window_seconds`` trigger a ban.

Window semantics (what the tests pin down): a match at time ``t`` still counts at time ``now`` while
``now - t < window_seconds``. So ``threshold`` matches spanning strictly less than the window trigger, and
a span of exactly ``window_seconds`` does not.

After a trigger the (rule, address) pair is quiet for ``ban_seconds``: further matches are counted in the
metrics but do not trigger again (nftables already drops the address, and one alert per ban is enough). The
caller may :meth:`Detector.forget` a trigger whose ban failed so that the next threshold retries it.

Times are monotonic seconds supplied by the caller, so wall-clock jumps neither ban nor release anyone.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .rules import Rule

__all__ = ["Detection", "Detector", "IPAddress", "parse_ip"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Detection:
    rule: Rule
    ip: IPAddress
    count: int
    source: str


def parse_ip(text: str) -> IPAddress | None:
    """Parse an address from a log line; IPv4-mapped IPv6 is reduced to IPv4 so it hits the v4 set."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class Detector:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self._by_source: dict[str, list[Rule]] = {}
        for rule in rules:
            self._by_source.setdefault(rule.source, []).append(rule)
        self._hits: dict[tuple[str, IPAddress], deque[float]] = {}
        self._quiet_until: dict[tuple[str, IPAddress], float] = {}
        # Counters are read by the HTTP thread while the tail loop updates them.
        self._count_lock = threading.Lock()
        rule_ids = [r.id for rules in self._by_source.values() for r in rules]
        self._matches = dict.fromkeys(rule_ids, 0)
        self._invalid_ips = dict.fromkeys(rule_ids, 0)

    def feed(self, source: str, line: str, now: float) -> list[Detection]:
        """Judge one line of ``source`` read at monotonic time ``now``."""
        found: list[Detection] = []
        for rule in self._by_source.get(source, ()):
            m = rule.pattern.search(line)
            if m is None:
                continue
            ip = parse_ip(m.group("ip") or "")
            with self._count_lock:
                self._matches[rule.id] += 1
                if ip is None:
                    self._invalid_ips[rule.id] += 1
            if ip is None:
                continue
            key = (rule.id, ip)
            if self._quiet_until.get(key, float("-inf")) > now:
                continue
            hits = self._hits.setdefault(key, deque())
            hits.append(now)
            horizon = now - rule.window_seconds
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) >= rule.threshold:
                found.append(Detection(rule=rule, ip=ip, count=len(hits), source=source))
                self._quiet_until[key] = now + rule.ban_seconds
                del self._hits[key]
        return found

    def carry_counts(self, old: Detector) -> None:
        """Keep the match counters of an old detector (they are totals since the agent started)."""
        with old._count_lock, self._count_lock:
            for rule_id, n in old._matches.items():
                self._matches[rule_id] = self._matches.get(rule_id, 0) + n
            for rule_id, n in old._invalid_ips.items():
                self._invalid_ips[rule_id] = self._invalid_ips.get(rule_id, 0) + n

    def forget(self, rule_id: str, ip: IPAddress) -> None:
        """Undo the quiet period of a trigger (used when the ban itself failed)."""
        self._quiet_until.pop((rule_id, ip), None)

    def prune(self, now: float) -> None:
        """Drop state that can no longer matter, bounding memory under a spray of distinct addresses."""
        windows = {r.id: r.window_seconds for rules in self._by_source.values() for r in rules}
        stale = [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - windows[k[0]]]
        for key in stale:
            del self._hits[key]
        expired = [k for k, until in self._quiet_until.items() if until <= now]
        for key in expired:
            del self._quiet_until[key]

    def matches(self) -> dict[str, int]:
        """Lines matched per rule id (including those with an invalid address)."""
        with self._count_lock:
            return dict(self._matches)

    def invalid_ips(self) -> dict[str, int]:
        """Matches per rule id whose ``ip`` group was not an IP address (ignored)."""
        with self._count_lock:
            return dict(self._invalid_ips)

    @property
    def tracked(self) -> int:
        return len(self._hits) + len(self._quiet_until)
