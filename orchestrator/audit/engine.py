"""Running the checks: testinfra over OpenSSH with the client's pinned keys and connection reuse, all hosts in
parallel, each host's checks in turn over one multiplexed connection.

A host that cannot be reached (refused, timed out, host key changed) is an error, not drift: its checks are not
run, the others' are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import remote
from ..errors import RemoteError
from ..inventory import Host, Inventory
from ..remote import CommandTimeout
from .checks import Check, Finding
from .expected import Expected
from .records import CheckResult, CheckStatus, HostReport
from .waivers import Waiver

Progress = Callable[[str], None]
COMMAND_TIMEOUT = 60.0  # seconds one check command may take on a host


def _reach(target: Any) -> str | None:
    """None when the host answers over SSH, else why not. testinfra's ssh backend raises on ssh's own exit
    code 255 (with ssh's message in the exception), so both shapes are read."""
    try:
        result = target.run("true")
    except CommandTimeout as exc:
        return f"unreachable over SSH: {exc.message}"
    except Exception as exc:  # a RuntimeError carrying the CommandResult
        stderr = getattr(exc.args[0], "stderr", None) if exc.args else None
        return _connection_error(stderr if isinstance(stderr, str) else str(exc))
    return None if result.rc == 0 else _connection_error(result.stderr or "")


def _connection_error(stderr: str) -> str:
    text = " ".join(stderr.split())
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return "host key does not match the pinned key (re-pin with 'sentryctl hosts pin' if the change is legitimate)"
    return f"unreachable over SSH: {text[:200] or 'ssh exited 255'}"


def _evaluate(check: Check, target: Any, expected: Expected) -> tuple[Finding, float]:
    started = time.monotonic()
    try:
        finding = check.probe(target, expected)
    except CommandTimeout:
        raise  # not a finding about the host: the host could not be audited (audit_host reports it)
    except Exception as exc:  # testinfra raises plain exceptions (AssertionError, RuntimeError) for failed commands
        finding = Finding(False, "the check's commands succeed", f"{type(exc).__name__}: {str(exc)[:200]}")
    return finding, time.monotonic() - started


def audit_host(
    host: Host,
    target: Any,
    expected: Expected,
    checks: Sequence[Check],
    waivers: Mapping[tuple[str, str], Waiver],
) -> HostReport:
    unreachable = _reach(target)
    if unreachable:
        return HostReport(host.name, host.address, expected, error=unreachable)
    results: list[CheckResult] = []
    for check in checks:
        if not check.applies(expected):
            tier = expected.tier
            results.append(
                CheckResult(
                    check.id, check.description, "not-applicable", found=f"tier {tier} has no {check.component}"
                )
            )
            continue
        try:
            finding, seconds = _evaluate(check, target, expected)
        except CommandTimeout as exc:
            error = f"check {check.id} did not finish: {exc.message}"
            return HostReport(host.name, host.address, expected, tuple(results), error=error)
        status: CheckStatus = "pass" if finding.ok else "fail"
        waiver = waivers.get((check.id, host.name))
        if not finding.ok and waiver is not None:
            status = "waived"
        results.append(
            CheckResult(check.id, check.description, status, finding.expected, finding.found, seconds, waiver)
        )
    if any(r.status == "fail" and r.found.startswith(("RuntimeError", "AssertionError")) for r in results):
        # A connection that died half-way makes every later command fail: that is an error, not drift.
        lost = _reach(target)
        if lost:
            return HostReport(host.name, host.address, expected, tuple(results), error=lost)
    return HostReport(host.name, host.address, expected, tuple(results))


def run_checks(
    inv: Inventory,
    hosts: Sequence[Host],
    expected: Mapping[str, Expected],
    checks: Sequence[Check],
    waivers: Mapping[tuple[str, str], Waiver],
    work_dir: Path,
    home: Path,
    on_progress: Progress,
    command_timeout: float = COMMAND_TIMEOUT,
) -> dict[str, HostReport]:
    ssh_config = remote.write_ssh_config(inv, work_dir / "ssh_config", home)

    def one(host: Host) -> HostReport:
        # Every command bounded (ServerAlive only notices a dead host): a check that hangs makes the host an error.
        target = remote.testinfra_host(host.name, ssh_config, command_timeout, sudo=host.user != "root")
        report = audit_host(host, target, expected[host.name], checks, waivers)
        on_progress(_progress_line(report))
        return report

    def failed(name: str, exc: RemoteError) -> HostReport:
        h = inv.host(name)
        return HostReport(name, h.address, expected[name], error=str(exc))

    return remote.parallel(hosts, one, failed)


def _progress_line(report: HostReport) -> str:
    if report.error:
        return f"{report.host}: error: {report.error}"
    failed = [c.id for c in report.failed]
    passed = sum(c.status == "pass" for c in report.checks)
    return f"{report.host}: {passed} passed" + (f", failed: {', '.join(failed)}" if failed else "")
