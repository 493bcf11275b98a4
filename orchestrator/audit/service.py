"""An audit end to end: validate everything that can be wrong before a host is contacted (client, checks,
waivers, signing key, bundle folder), run the checks, ask Ansible what it would change, write and sign the
evidence bundle, and record the audit in the ledger.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import inventory
from ..clients import ensure_client
from ..errors import OrchestratorError
from ..inventory import Inventory
from ..ledger import Ledger
from ..releases import ReleaseError, signing
from ..settings import Settings
from . import bundle, report
from .checks import Check, registry
from .drift import CheckRun, converge_check
from .engine import COMMAND_TIMEOUT, run_checks
from .errors import AuditError
from .expected import Expected, expected_state
from .records import (
    CONVERGE_CHECK_DESCRIPTION,
    CONVERGE_CHECK_ID,
    AuditOutcome,
    CheckResult,
    CheckStatus,
    HostReport,
)
from .waivers import Waiver, load_waivers

Progress = Callable[[str], None]
WAIVERS_FILE = "waivers.yml"
INVENTORY_FILES = ("hosts.yml", "client.yml", "known_hosts")
INVENTORY_DIRS = ("group_vars", "host_vars")
LEDGER_EVENTS = 500


def check_catalog() -> list[tuple[str, str, str]]:
    """Every check an audit can run: (id, tier component that enables it, description)."""
    return [(c.id, c.component, c.description) for c in registry()] + [
        (CONVERGE_CHECK_ID, "all", CONVERGE_CHECK_DESCRIPTION)
    ]


def all_check_ids() -> list[str]:
    return [cid for cid, _, _ in check_catalog()]


def _select_checks(check_ids: Sequence[str]) -> tuple[tuple[Check, ...], bool]:
    known = all_check_ids()
    unknown = [c for c in check_ids if c not in known]
    if unknown:
        raise AuditError(
            f"unknown check {', '.join(repr(c) for c in unknown)}", hint="list them with 'sentryctl audit checks'"
        )
    chosen = set(check_ids) or set(known)
    return tuple(c for c in registry() if c.id in chosen), CONVERGE_CHECK_ID in chosen


def new_audit_uid(client: str, now: _dt.datetime) -> str:
    return f"au-{now.strftime('%Y%m%dT%H%M%SZ')}-{client}-{secrets.token_hex(2)}"


def run_audit(
    settings: Settings,
    client: str,
    ledger: Ledger,
    *,
    limit: str | None = None,
    out_dir: Path | None = None,
    check_ids: Sequence[str] = (),
    waivers_file: Path | None = None,
    converge_check: bool = True,
    auditor: str | None = None,
    on_progress: Progress | None = None,
    today: _dt.date | None = None,
    command_timeout: float = COMMAND_TIMEOUT,
) -> AuditOutcome:
    try:
        return _start(
            settings, client, ledger, limit=limit, out_dir=out_dir, check_ids=check_ids, waivers_file=waivers_file,
            converge_check=converge_check, auditor=auditor, on_progress=on_progress, today=today,
            command_timeout=command_timeout,
        )  # fmt: skip
    except AuditError:
        raise
    except OrchestratorError as exc:
        # Whatever stops an audit (unknown client, unreadable inventory, a run that cannot start) means "could not
        # audit", never "drift": exit 4, the message and its hint kept.
        raise AuditError(exc.message, hint=exc.hint) from exc


def _start(
    settings: Settings,
    client: str,
    ledger: Ledger,
    *,
    limit: str | None,
    out_dir: Path | None,
    check_ids: Sequence[str],
    waivers_file: Path | None,
    converge_check: bool,
    auditor: str | None,
    on_progress: Progress | None,
    today: _dt.date | None,
    command_timeout: float,
) -> AuditOutcome:
    say = on_progress or (lambda _msg: None)
    started = _dt.datetime.now(_dt.UTC)
    inv = inventory.load(settings.inventories, client)
    hosts = inv.select(limit)
    checks, with_converge = _select_checks(check_ids)
    with_converge = with_converge and converge_check
    try:
        signing.check_key_pair(settings.home)
    except ReleaseError as exc:
        raise AuditError(f"evidence bundles are signed with Sentry's key: {exc.message}", hint=exc.hint) from exc
    waiver_path = waivers_file or (inv.path / WAIVERS_FILE)
    waivers: dict[tuple[str, str], Waiver] = {}
    if waivers_file is not None or waiver_path.exists():
        waivers = load_waivers(
            waiver_path, checks=all_check_ids(), hosts=[h.name for h in inv.hosts], today=today or started.date()
        )
    uid = new_audit_uid(client, started)
    bundle_dir = (out_dir or settings.home / "audits") / uid
    try:
        bundle.private_dir(bundle_dir)
    except OSError as exc:
        raise AuditError(f"cannot create the evidence bundle folder {bundle_dir}: {exc.strerror}",
                         hint="choose a writable --out folder") from exc  # fmt: skip
    try:
        return _audit(
            settings, inv, ledger, hosts, checks, with_converge, waivers, waiver_path, uid, bundle_dir, started,
            auditor or ledger.actor, say, command_timeout,
        )  # fmt: skip
    except BaseException:
        # Never leave an unsigned half-bundle that someone could file.
        shutil.rmtree(bundle_dir, ignore_errors=True)
        raise


def _audit(
    settings: Settings,
    inv: Inventory,
    ledger: Ledger,
    hosts: Sequence[inventory.Host],
    checks: Sequence[Check],
    with_converge: bool,
    waivers: dict[tuple[str, str], Waiver],
    waiver_path: Path,
    uid: str,
    bundle_dir: Path,
    started: _dt.datetime,
    auditor: str,
    say: Progress,
    command_timeout: float,
) -> AuditOutcome:
    ensure_client(ledger, inv)
    releases = {r.host: r for r in ledger.host_releases(inv.client)}
    expected = expected_state(inv, releases)
    work_dir = settings.home / "audits" / ".work" / uid
    work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    say(f"checking {len(hosts)} host(s) with {len(checks)} check(s) over SSH")
    reports = run_checks(inv, hosts, expected, checks, waivers, work_dir, settings.home, say, command_timeout)
    notes: list[str] = []
    if with_converge:
        reachable = [h for h in hosts if not reports[h.name].error]
        if reachable:
            changes, notes = converge_check(settings, ledger, inv, reachable, expected, say)
            for name, found in changes.items():
                reports[name] = _with_converge(reports[name], found, waivers)
    finished = _dt.datetime.now(_dt.UTC)
    outcome = AuditOutcome(
        uid=uid,
        client=inv.client,
        tier=inv.tier,
        auditor=auditor,
        started_at=started,
        finished_at=finished,
        hosts=reports,
        bundle=bundle_dir,
        bundle_sha256="",
        converge_checked=with_converge,
        notes=tuple(notes),
    )
    say(f"writing the evidence bundle {bundle_dir}")
    _write_bundle(bundle_dir, outcome, inv, ledger, [h.name for h in hosts], waiver_path if waivers else None)
    digest = bundle.seal(
        bundle_dir,
        settings.home,
        {
            "audit": uid,
            "client": inv.client,
            "auditor": auditor,
            "created": finished.isoformat(),
            "result": outcome.status,
        },
    )
    ledger.record_audit(
        uid,
        inv.client,
        auditor=auditor,
        started_at=started,
        result=outcome.status,
        hosts={n: r.status for n, r in reports.items()},
        bundle_path=str(bundle_dir),
        bundle_sha256=digest,
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    return dataclasses.replace(outcome, bundle_sha256=digest)


def _with_converge(host: HostReport, found: CheckRun, waivers: dict[tuple[str, str], Waiver]) -> HostReport:
    changes = found.changes
    tasks = "; ".join(c.task for c in changes[:8]) + (f"; and {len(changes) - 8} more" if len(changes) > 8 else "")
    if found.failure is not None:
        seen = f"{len(changes)} change(s) found before it: {tasks}" if changes else "no change found before it"
        result = CheckResult(
            CONVERGE_CHECK_ID, CONVERGE_CHECK_DESCRIPTION, "fail", "a clean check-mode run", f"{found.failure}; {seen}"
        )
        return dataclasses.replace(host, checks=(*host.checks, result), changes=changes, converge_failure=found.failure)
    ok = not changes
    waiver = waivers.get((CONVERGE_CHECK_ID, host.host))
    status: CheckStatus = "pass" if ok else ("waived" if waiver else "fail")
    result = CheckResult(
        CONVERGE_CHECK_ID,
        CONVERGE_CHECK_DESCRIPTION,
        status,
        "0 changes",
        "0 changes" if ok else f"{len(changes)} change(s): {tasks}",
        waiver=waiver if status == "waived" else None,
    )
    return dataclasses.replace(host, checks=(*host.checks, result), changes=changes)


def _write_bundle(
    root: Path, outcome: AuditOutcome, inv: Inventory, ledger: Ledger, hosts: list[str], waivers: Path | None
) -> None:
    (root / "report.json").write_text(json.dumps(report.report_json(outcome), indent=2, sort_keys=True) + "\n")
    (root / "junit.xml").write_bytes(report.junit_xml(outcome))
    (root / "report.html").write_text(report.report_html(outcome), encoding="utf-8")
    snapshot = root / "inventory"
    snapshot.mkdir()
    for name in INVENTORY_FILES:
        if (inv.path / name).is_file():
            shutil.copy2(inv.path / name, snapshot / name)
    for name in INVENTORY_DIRS:
        if (inv.path / name).is_dir():
            shutil.copytree(inv.path / name, snapshot / name)
    if waivers is not None:
        shutil.copy2(waivers, root / "waivers.yml")
    (root / "ledger.json").write_text(
        json.dumps(_ledger_excerpt(ledger, inv.client, hosts), indent=2, default=str) + "\n"
    )


def _ledger_excerpt(ledger: Ledger, client: str, hosts: list[str]) -> dict[str, Any]:
    chain = ledger.verify()
    record = ledger.client(client)
    events = [
        dataclasses.asdict(e)
        for e in ledger.events(client, limit=LEDGER_EVENTS)
        if e.subject in (None, client, *hosts) or e.client == client
    ]
    return {
        "client": dataclasses.asdict(record) if record else None,
        "host_releases": [dataclasses.asdict(r) for r in ledger.host_releases(client) if r.host in hosts],
        "recent_runs": [
            {"uid": r.uid, "kind": r.kind, "status": r.status, "started_at": r.started_at, "actor": r.actor}
            for r in ledger.runs(client, limit=20)
        ],
        "events": events,
        "chain": {"ok": chain.ok, "checked": chain.checked, "head_seq": chain.head_seq, "head_hash": chain.head_hash},
    }


def expected_for(settings: Settings, client: str, ledger: Ledger) -> dict[str, Expected]:
    """What the ledger and inventory say each host of ``client`` should be (for `audit show-expected`)."""
    inv = inventory.load(settings.inventories, client)
    return expected_state(inv, {r.host: r for r in ledger.host_releases(client)})
