"""The smoke gate: a few testinfra checks that a freshly switched host really runs the release as intended.

They run over OpenSSH with the client's pinned keys and connection reuse (the fastest testinfra backend here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import remote
from ..inventory import Host, Inventory

SmokeCheck = tuple[str, str, Callable[[Any, str], bool]]

CHECKS: tuple[SmokeCheck, ...] = (
    ("agent-running", "the sentry-agent service runs and is enabled",
     lambda h, v: h.service("sentry-agent").is_running and h.service("sentry-agent").is_enabled),
    ("release-current", "/opt/sentry/current points at the release",
     lambda h, v: h.file("/opt/sentry/current").linked_to == f"/opt/sentry/releases/{v}"),
    ("release-version", "the release's VERSION file says the version",
     lambda h, v: h.file(f"/opt/sentry/releases/{v}/VERSION").content_string.strip() == v),
    ("previous-kept", "the previous release is kept for rollback",
     lambda h, v: h.file("/opt/sentry/previous").exists or len(h.file("/opt/sentry/releases").listdir()) == 1),
    ("firewall-sets", "the firewall's ban sets exist",
     lambda h, v: h.run("nft list set inet sentry banned_v4").rc == 0),
)  # fmt: skip


@dataclass(frozen=True)
class SmokeResult:
    host: str
    passed: bool
    failures: tuple[str, ...] = ()


def run_smoke(
    inv: Inventory, hosts: Sequence[Host], version: str, home: Path, command_timeout: float = 30.0
) -> dict[str, SmokeResult]:
    # The state home's masters: the checks ride the connection the wave's agent run opened.
    ssh_config = remote.write_ssh_config(inv, home / "smoke" / f"ssh_config-{inv.client}", home)

    def check(host: Host) -> SmokeResult:
        # Each command bounded: one that hangs on the host fails its check (CommandTimeout) instead of the gate.
        target = remote.testinfra_host(host.name, ssh_config, command_timeout)
        failures = []
        for check_id, description, probe in CHECKS:
            why = ""
            try:
                ok = bool(probe(target, version))
            except Exception as exc:  # testinfra raises plain RuntimeErrors for connection failures
                ok, why = False, f" ({type(exc).__name__}: {str(exc)[:120]})"
            if not ok:
                failures.append(f"{check_id}: {description}{why}")
        return SmokeResult(host.name, not failures, tuple(failures))

    return remote.parallel(hosts, check, lambda name, exc: SmokeResult(name, False, (str(exc),)))
