"""The audit's results as typed records: per check, per host, and for the whole audit."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import EXIT_COMPLIANT, EXIT_DRIFT, EXIT_NOT_AUDITED
from .expected import Expected
from .waivers import Waiver

CheckStatus = Literal["pass", "fail", "waived", "not-applicable"]
HostStatus = Literal["compliant", "drift", "error"]

CONVERGE_CHECK_ID = "converge.site-check"
CONVERGE_CHECK_DESCRIPTION = "Provisioning now (the site playbook in check mode) would change nothing on the host."


@dataclass(frozen=True)
class CheckResult:
    id: str
    description: str
    status: CheckStatus
    expected: str = ""
    found: str = ""
    seconds: float = 0.0
    waiver: Waiver | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "status": self.status,
            "expected": self.expected,
            "found": self.found,
            "seconds": round(self.seconds, 3),
            "waiver": self.waiver.to_json() if self.waiver else None,
        }


@dataclass(frozen=True)
class Change:
    """One task that the site playbook would change on a host, with Ansible's diff when it gives one."""

    task: str
    diff: str = ""

    def to_json(self) -> dict[str, str]:
        return {"task": self.task, "diff": self.diff}


@dataclass(frozen=True)
class HostReport:
    host: str
    address: str
    expected: Expected
    checks: tuple[CheckResult, ...] = ()
    changes: tuple[Change, ...] = ()
    error: str | None = None  # the host could not be audited (unreachable, host key, timeout)
    converge_failure: str | None = None  # the check-mode run failed here: the changes may be only part of them

    @property
    def status(self) -> HostStatus:
        if self.error:
            return "error"
        return "drift" if any(c.status == "fail" for c in self.checks) else "compliant"

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "address": self.address,
            "status": self.status,
            "error": self.error,
            "expected": self.expected.to_json(),
            "checks": [c.to_json() for c in self.checks],
            "changes": [c.to_json() for c in self.changes],
            "converge_failure": self.converge_failure,
        }


@dataclass(frozen=True)
class AuditOutcome:
    uid: str
    client: str
    tier: str | None
    auditor: str
    started_at: _dt.datetime
    finished_at: _dt.datetime
    hosts: dict[str, HostReport]
    bundle: Path
    bundle_sha256: str
    converge_checked: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def status(self) -> HostStatus:
        statuses = {h.status for h in self.hosts.values()}
        if "error" in statuses:
            return "error"
        return "drift" if "drift" in statuses else "compliant"

    @property
    def exit_code(self) -> int:
        return {"compliant": EXIT_COMPLIANT, "drift": EXIT_DRIFT, "error": EXIT_NOT_AUDITED}[self.status]
