"""Provisioning: preflight every host, converge the stack its tier calls for, record what each host runs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import __version__, inventory, paths, releases, secrets
from .bookkeeping import ensure_client
from .ledger import HostResult, Ledger
from .preflight import PreflightReport, Thresholds, preflight
from .runner import Cancellation, EventCallback, RunRequest, RunResult, new_run_id, run_playbook
from .settings import Settings
from .tiers import get_tier

STACK_TAGS = ("baseline", "firewall", "ids", "agent")


@dataclass(frozen=True)
class ProvisionResult:
    client: str
    preflight: PreflightReport
    bundle: releases.Bundle
    run: RunResult | None = None  # None when preflight stopped the run before it started

    @property
    def ok(self) -> bool:
        return self.preflight.ok and self.run is not None and self.run.ok


def dev_bundle(settings: Settings) -> releases.Bundle:
    """The agent release built from this tree's agent/ (until the release catalog provides one).

    Built in a private folder and renamed into place: two provisions at once (two clients) would otherwise write
    the same temporary file and one of them would fail. The bytes are deterministic, so either rename wins."""
    out = settings.home / "releases" / "dev"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out) as work:
        built = releases.build_bundle(paths.project_root() / "agent", Path(work))
        final = out / built.path.name
        os.replace(built.path, final)
    return replace(built, path=final)


def site_request(
    settings: Settings,
    inv: inventory.Inventory,
    bundle: releases.Bundle,
    *,
    limit: str | None = None,
    dry_run: bool = False,
    tags: Sequence[str] = (),
) -> RunRequest:
    return RunRequest(
        vault=secrets.run_files(settings, inv),
        playbook=paths.playbook("site.yml"),
        inventory=inv,
        label=f"{'check' if dry_run else 'provision'}-{inv.client}",
        limit=limit,
        tags=tuple(tags),
        extravars={**releases.agent_extravars(bundle), "sentry_stack_version": __version__},
        check=dry_run,
        diff=dry_run,
        verbosity=max(0, settings.verbosity - 1),
    )


def provision(
    settings: Settings,
    client: str,
    ledger: Ledger,
    *,
    limit: str | None = None,
    dry_run: bool = False,
    tags: Sequence[str] = (),
    limits: Thresholds | None = None,
    on_event: EventCallback | None = None,
    cancel: Cancellation | None = None,
    task_timeout: int = RunRequest.task_timeout,
    run_timeout: int = RunRequest.run_timeout,
) -> ProvisionResult:
    inv = inventory.load(settings.inventories, client)
    hosts = inv.select(limit)  # an unknown host fails here, before anything runs
    tier = get_tier(inv.tier or "")
    bundle = dev_bundle(settings)
    report = preflight(inv, hosts, limits)
    if not report.ok:
        return ProvisionResult(client, report, bundle)
    ensure_client(ledger, inv)
    request = site_request(settings, inv, bundle, limit=limit, dry_run=dry_run, tags=tags)
    request = replace(request, run_id=new_run_id(request.label), task_timeout=task_timeout, run_timeout=run_timeout)
    assert request.run_id is not None
    kind = "check" if dry_run else "provision"
    summary = {"hosts": [h.name for h in hosts], "release": bundle.version, "sha256": bundle.sha256, "tags": list(tags)}
    ledger.start_run(kind, client, summary, uid=request.run_id)
    try:
        result = run_playbook(request, settings, on_event=on_event, cancel=cancel)
    except BaseException:
        ledger.finish_run(request.run_id, "cancelled")
        raise
    ledger.finish_run(
        result.run_id,
        "succeeded" if result.ok else "failed",
        {h: HostResult(o.status, None, o.to_json()) for h, o in result.hosts.items()},
    )
    agent_applied = "agent" in tier.components and (not tags or "agent" in tags)
    if not dry_run and agent_applied:
        for host, outcome in sorted(result.hosts.items()):
            if outcome.status in ("ok", "changed"):
                ledger.set_host_release(
                    client,
                    host,
                    stack_version=__version__,
                    release_version=bundle.version,
                    release_track=bundle.track,
                    run_uid=result.run_id,
                )
    return ProvisionResult(client, report, bundle, result)
