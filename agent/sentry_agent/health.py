"""Agent health as served on ``GET /healthz``.

Contract (the rollout health gate depends on it)::

    HTTP 200 {"status": "ok", ...}        running, no error in the last 5 minutes
    HTTP 200 {"status": "degraded", ...}  running, but last_error was set within the last 5 minutes
    HTTP 503 {"status": "failing", ...}   the release's rules carry "self_test": "fail" (fault injection)

Body keys: status, version, rules_version, uptime_seconds, last_error (string or null), last_error_at
(RFC 3339 UTC or null), client, host, tier, rules {"active": [...], "inactive": [...]} (rule ids; a rule is
inactive when its source is not configured on this host).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["DEGRADED_SECONDS", "HealthState", "rfc3339"]

DEGRADED_SECONDS = 300.0


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HealthState:
    def __init__(
        self,
        *,
        version: str,
        rules_version: str,
        client: str,
        host: str,
        tier: str,
        active_rules: Sequence[str],
        inactive_rules: Sequence[str],
        self_test_fail: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.version = version
        self.rules_version = rules_version
        self.client, self.host, self.tier = client, host, tier
        self.active_rules = list(active_rules)
        self.inactive_rules = list(inactive_rules)
        self.self_test_fail = self_test_fail
        self._clock = clock
        self._wall = wall_clock
        self._started = clock()
        self._lock = threading.Lock()
        self._last_error: str | None = None
        self._last_error_mono = 0.0
        self._last_error_wall = 0.0

    def set_rules(self, rules_version: str, active: Sequence[str], inactive: Sequence[str]) -> None:
        """A detection pack's rules (or the release's again) took effect."""
        with self._lock:
            self.rules_version = rules_version
            self.active_rules, self.inactive_rules = list(active), list(inactive)

    def uptime(self) -> float:
        return self._clock() - self._started

    def record_error(self, message: str) -> None:
        # One line: it is shown verbatim in /healthz and in rollout reports.
        line = " ".join(message.split())[:500]
        with self._lock:
            self._last_error = line
            self._last_error_mono = self._clock()
            self._last_error_wall = self._wall()

    @property
    def last_error(self) -> str | None:
        with self._lock:
            return self._last_error

    def status(self) -> str:
        if self.self_test_fail:
            return "failing"
        with self._lock:
            recent = self._last_error is not None and self._clock() - self._last_error_mono < DEGRADED_SECONDS
        return "degraded" if recent else "ok"

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status code, /healthz body)."""
        status = self.status()
        with self._lock:
            last_error, last_error_wall = self._last_error, self._last_error_wall
        body: dict[str, Any] = {
            "status": status,
            "version": self.version,
            "rules_version": self.rules_version,
            "uptime_seconds": round(self.uptime(), 3),
            "last_error": last_error,
            "last_error_at": rfc3339(last_error_wall) if last_error is not None else None,
            "client": self.client,
            "host": self.host,
            "tier": self.tier,
            "rules": {"active": list(self.active_rules), "inactive": list(self.inactive_rules)},
        }
        return (503 if status == "failing" else 200), body
