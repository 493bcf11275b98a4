"""What Ansible would change: the site playbook in check + diff mode on the audited hosts.

Hosts are grouped by the release the ledger records for them, so the agent role is checked against that very
release (from the catalog, or this tree's development bundle). A host whose release neither has is checked
without the agent role, and the audit says so.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import releases
from ..errors import OrchestratorError
from ..inventory import Host, Inventory
from ..ledger import Ledger
from ..provision import dev_bundle, site_request
from ..runner import RunResult
from ..runs import run_recorded
from ..settings import Settings
from .expected import Expected
from .records import Change

MAX_DIFF_LINES = 200


@dataclass(frozen=True)
class CheckRun:
    """What the check-mode run found on one host: every change it would make (with its diff), and, when the run
    failed on that host, why (the failing task and its message). A failed run never reads as "nothing"."""

    changes: tuple[Change, ...] = ()
    failure: str | None = None


def _bundle_for(settings: Settings, version: str | None) -> releases.Bundle | None:
    if version is None:
        return None
    try:
        return releases.get_release(settings.home, version).as_bundle()
    except OrchestratorError:
        pass
    dev = dev_bundle(settings)
    return dev if dev.version == version else None


def converge_check(
    settings: Settings,
    ledger: Ledger,
    inv: Inventory,
    hosts: Sequence[Host],
    expected: Mapping[str, Expected],
    on_progress: Callable[[str], None],
) -> tuple[dict[str, CheckRun], list[str]]:
    """Per host: the changes the site playbook would make, and why it could not tell where its run failed."""
    groups: dict[str | None, list[str]] = {}
    for h in hosts:
        groups.setdefault(expected[h.name].release, []).append(h.name)
    result: dict[str, CheckRun] = {}
    notes: list[str] = []
    fallback = dev_bundle(settings)
    for version, names in sorted(groups.items(), key=lambda kv: str(kv[0])):
        bundle = _bundle_for(settings, version)
        request = site_request(settings, inv, bundle or fallback, limit=",".join(names), dry_run=True)
        if bundle is None:
            request = replace(request, skip_tags=("agent",))
            notes.append(
                f"{', '.join(names)}: the ledger's release {version or '(none)'} is not in the catalog; "
                "the check-mode run skipped the agent role"
            )
        request = replace(request, label=f"audit-check-{inv.client}", verbosity=0)
        on_progress(f"check mode: site playbook on {', '.join(names)}")
        # Recorded like every other playbook run (kind "audit-check"): the ledger shows what touched the hosts.
        summary = {"hosts": names, "release": version, "check": True}
        run, _ = run_recorded(settings, ledger, request, kind="audit-check", client=inv.client, summary=summary)
        result.update(_changes(run, names))
    return result, notes


def _changes(run: RunResult, names: Sequence[str]) -> dict[str, CheckRun]:
    found: dict[str, list[Change]] = {n: [] for n in names}
    failures: dict[str, str] = {}
    events_dir = run.artifact_dir / "job_events"
    for path in sorted(events_dir.glob("*.json"), key=_counter):
        event = json.loads(path.read_text(encoding="utf-8"))
        data = event.get("event_data") or {}
        host, res = data.get("host"), data.get("res") or {}
        if event.get("event") == "runner_on_ok" and host in found and res.get("changed"):
            found[host].append(Change(str(data.get("task", "?")), render_diff(res.get("diff"))))
        failing = event.get("event") in ("runner_on_failed", "runner_on_unreachable")
        if failing and host in found and not data.get("ignore_errors"):
            message = " ".join(str(res.get("msg") or res.get("stderr") or "").split())[:400]
            failures[host] = f"task {data.get('task', '?')!r} failed: {message or 'no message'}"
    out: dict[str, CheckRun] = {}
    for name in names:
        outcome = run.hosts.get(name)
        failure = None
        if outcome is None or outcome.status in ("failed", "unreachable"):
            state = outcome.status if outcome else "not reached"
            why = failures.get(name, "no failing task recorded")
            failure = f"check-mode run {state}: {why} (see {run.artifact_dir / 'stdout'})"
        # Every change found is kept, those before a failure too: the evidence tells the whole truth.
        out[name] = CheckRun(tuple(found[name]), failure)
    return out


def _counter(path: Path) -> int:
    head = path.name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def render_diff(diff: Any) -> str:
    """Ansible's diff result (a dict, or a list of them) as unified diff text, cut to a readable length."""
    items = diff if isinstance(diff, list) else [diff] if isinstance(diff, dict) else []
    lines: list[str] = []
    for item in items:
        if "prepared" in item:
            lines += str(item["prepared"]).splitlines()
            continue
        before, after = item.get("before", ""), item.get("after", "")
        if isinstance(before, dict) or isinstance(after, dict):
            before = json.dumps(before, indent=1, sort_keys=True, default=str)
            after = json.dumps(after, indent=1, sort_keys=True, default=str)
        lines += difflib.unified_diff(
            str(before).splitlines(),
            str(after).splitlines(),
            fromfile=str(item.get("before_header", "before")),
            tofile=str(item.get("after_header", "after")),
            lineterm="",
        )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more lines)"]
    return "\n".join(lines)
