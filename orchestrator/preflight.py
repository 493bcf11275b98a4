"""Preflight: is every host fit for the stack before anything changes on it?

One strictly checked SSH connection per host, one probe script, all hosts in parallel, every step bounded by
the timeout, so a host that accepts TCP and never speaks SSH fails in time instead of hanging the run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import remote
from .errors import HostKeyMismatch, RemoteError
from .inventory import Host, Inventory

SUPPORTED_OS: dict[str, tuple[str, ...]] = {"debian": ("12",)}

# Prints key=value lines; every probe tolerates a missing tool so one gap does not hide the others.
PROBE = r"""
echo "python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
echo "os=$( (. /etc/os-release && echo "$ID $VERSION_ID") 2>/dev/null)"
echo "systemd=$(test -d /run/systemd/system && echo yes || echo no)"
echo "free_kb=$(df -Pk / 2>/dev/null | awk 'NR==2 {print $4}')"
if [ "$(id -u)" = 0 ]; then echo "become=root"
elif sudo -n true 2>/dev/null; then echo "become=sudo"
else echo "become=no"; fi
echo "time=$(date +%s.%N)"
"""


@dataclass(frozen=True)
class Thresholds:
    min_free_mb: int = 1024
    max_clock_skew: float = 5.0
    min_python: tuple[int, int] = (3, 8)
    timeout: float = 10.0


@dataclass(frozen=True)
class Check:
    id: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class HostReport:
    host: str
    address: str
    checks: tuple[Check, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    key_mismatch: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.ok for c in self.checks)

    @property
    def why(self) -> str:
        """Why the host failed, in one line (empty when it passed)."""
        if self.error is not None:
            return self.error
        return "; ".join(f"{c.id}: {c.detail}" for c in self.checks if not c.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "address": self.address,
            "ok": self.ok,
            "error": self.error,
            "seconds": round(self.seconds, 2),
            "checks": [c.__dict__ for c in self.checks],
        }


@dataclass(frozen=True)
class PreflightReport:
    client: str
    hosts: tuple[HostReport, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hosts)

    @property
    def failed(self) -> list[str]:
        return [h.host for h in self.hosts if not h.ok]

    def to_json(self) -> dict[str, Any]:
        return {"client": self.client, "ok": self.ok, "hosts": [h.to_json() for h in self.hosts]}


def parse_probe(output: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()] = value.strip()
    return facts


def evaluate(facts: dict[str, str], t0: float, t1: float, limits: Thresholds) -> tuple[Check, ...]:
    """Turn probe output into checks; pure, so every edge is unit-tested."""
    checks: list[Check] = [Check("ssh", True, "reachable with the pinned host key")]
    py = facts.get("python", "")
    try:
        version = tuple(int(p) for p in py.split("."))[:2]
        ok = version >= limits.min_python
        checks.append(
            Check("python", ok, f"python {py}" + ("" if ok else f" < {'.'.join(map(str, limits.min_python))}"))
        )
    except ValueError:
        checks.append(Check("python", False, "python3 not found"))
    become = facts.get("become", "no")
    checks.append(
        Check(
            "become",
            become in ("root", "sudo"),
            {"root": "connected as root", "sudo": "sudo works without a password"}.get(
                become, "neither root nor passwordless sudo"
            ),
        )
    )
    try:
        free_mb = int(facts.get("free_kb", "")) // 1024
        checks.append(
            Check("disk", free_mb >= limits.min_free_mb, f"{free_mb} MiB free on / (need {limits.min_free_mb})")
        )
    except ValueError:
        checks.append(Check("disk", False, "could not read free space on /"))
    try:
        remote_time = float(facts.get("time", ""))
        # The remote clock was read somewhere between t0 and t1: only what lies outside that span is skew.
        skew = max(0.0, abs(remote_time - (t0 + t1) / 2) - (t1 - t0) / 2)
        checks.append(
            Check("clock", skew <= limits.max_clock_skew, f"clock skew {skew:.2f}s (max {limits.max_clock_skew:g}s)")
        )
    except ValueError:
        checks.append(Check("clock", False, "could not read the remote clock"))
    os_id, _, os_version = facts.get("os", "").partition(" ")
    supported = os_version in SUPPORTED_OS.get(os_id, ())
    checks.append(
        Check(
            "os",
            supported,
            f"{os_id or 'unknown'} {os_version}".strip() + ("" if supported else " is not supported (Debian 12 is)"),
        )
    )
    checks.append(
        Check(
            "systemd",
            facts.get("systemd") == "yes",
            "systemd is the init system" if facts.get("systemd") == "yes" else "systemd is not running",
        )
    )
    return tuple(checks)


def check_host(inv: Inventory, host: Host, limits: Thresholds) -> HostReport:
    start = time.monotonic()
    try:
        client = remote.connect(inv, host, timeout=limits.timeout)
    except HostKeyMismatch as exc:
        return HostReport(host.name, host.address, error=str(exc), seconds=time.monotonic() - start, key_mismatch=True)
    except RemoteError as exc:
        return HostReport(host.name, host.address, error=exc.message, seconds=time.monotonic() - start)
    try:
        t0 = time.time()
        result = remote.run(client, PROBE, timeout=limits.timeout)
        t1 = time.time()
    except RemoteError as exc:
        return HostReport(host.name, host.address, error=exc.message, seconds=time.monotonic() - start)
    finally:
        client.close()
    checks = evaluate(parse_probe(result.stdout), t0, t1, limits)
    return HostReport(host.name, host.address, checks, seconds=time.monotonic() - start)


def preflight(inv: Inventory, hosts: Sequence[Host] | None = None, limits: Thresholds | None = None) -> PreflightReport:
    limits = limits or Thresholds()
    hosts = tuple(hosts) if hosts is not None else inv.hosts
    results = remote.parallel(
        hosts, lambda h: check_host(inv, h, limits), lambda name, exc: HostReport(name, "", error=str(exc))
    )
    return PreflightReport(inv.client, tuple(results.values()))
