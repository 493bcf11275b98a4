"""Provisioning: preflight every host, converge the stack its tier calls for, record what each host runs.

Provisioning never moves a host off the release it runs: each host is converged with the release the ledger says
it runs, taken from the signed catalog and verified before any SSH connection. The agent built from this tree
(:func:`dev_bundle`) goes only to a host with no release yet (the first install), or to every host when
``release=`` asks for a catalog release, which obeys the rollout's rules (no downgrade, the release's minimum
previous version). Hosts that run different releases are converged in one run per release.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import __version__, inventory, paths, releases, vault
from .clients import ensure_client
from .collector.agentvars import collector_extravars
from .errors import OrchestratorError
from .ledger import Ledger
from .preflight import PreflightReport, Thresholds, preflight
from .rollout.inputs import release_input
from .rollout.plan import HostInput, skip_reason
from .runner import Cancellation, EventCallback, RunRequest, RunResult
from .runs import record_releases, run_recorded
from .settings import Settings
from .tiers import get_tier

STACK_TAGS = ("baseline", "firewall", "ids", "agent")


@dataclass(frozen=True)
class ProvisionResult:
    client: str
    preflight: PreflightReport
    targets: Mapping[str, releases.Bundle]  # host -> the agent release it was converged with
    runs: tuple[RunResult, ...] = ()  # empty when every host failed preflight
    reasons: Mapping[str, str] | None = None  # failed host -> why (its preflight, or its failing task and message)

    @property
    def ok(self) -> bool:
        return self.preflight.ok and bool(self.runs) and all(r.ok for r in self.runs)

    @property
    def bundle(self) -> releases.Bundle:
        """The release of the first host (every host's, in the usual case of one release per client)."""
        return self.targets[min(self.targets)]

    @property
    def releases(self) -> dict[str, str]:
        return {h: b.version for h, b in sorted(self.targets.items())}

    @property
    def run(self) -> RunResult | None:
        """The runs as one result (one run per release; mostly there is only one)."""
        if not self.runs:
            return None
        if len(self.runs) == 1:
            return self.runs[0]
        first = self.runs[0]
        bad = next((r for r in self.runs if r.status != "successful"), first)
        return RunResult(
            run_id="+".join(r.run_id for r in self.runs),
            status=bad.status,
            rc=max(r.rc for r in self.runs),
            hosts={h: o for r in self.runs for h, o in r.hosts.items()},
            artifact_dir=bad.artifact_dir,
            stats_seen=all(r.stats_seen for r in self.runs),
        )


def dev_bundle(settings: Settings) -> releases.Bundle:
    """The agent release built from this tree's agent/ (for hosts that run no release yet).

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
        vault=vault.run_files(settings, inv),
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


def choose_releases(
    settings: Settings, ledger: Ledger, inv: inventory.Inventory, hosts: Sequence[str], release: str | None
) -> dict[str, releases.Bundle]:
    """The agent release each host is converged with; every catalog release is verified here, before any SSH.

    Raises :class:`OrchestratorError` for a host that runs a release the catalog cannot vouch for, and for a
    ``release`` that a host may not take (a downgrade, or below the release's minimum previous version)."""
    known = ledger.client(inv.client) is not None
    running = {r.host: r.release_version for r in ledger.host_releases(inv.client)} if known else {}
    if release is not None:
        chosen = releases.verify_release(release, settings.home)
        wanted = release_input(chosen)
        refused = []
        for host in hosts:
            why = skip_reason(wanted, HostInput(inv.client, host, running.get(host)), rollback=False)
            if why is not None and running.get(host) != chosen.version:
                refused.append(f"{host} ({why})")
        if refused:
            raise OrchestratorError(
                f"release {chosen.version} cannot go to {', '.join(refused)}; nothing was changed",
                hint="provision those hosts without --release (they keep their release), or roll back first",
            )
        return dict.fromkeys(hosts, chosen.as_bundle())
    tree: releases.Bundle | None = None
    verified: dict[str, releases.Bundle] = {}
    out: dict[str, releases.Bundle] = {}
    for host in hosts:
        version = running.get(host)
        if version is None or (version not in verified and not _in_catalog(settings, version)):
            tree = tree or dev_bundle(settings)
            if version is not None and version != tree.version:
                raise OrchestratorError(
                    f"host {host} of {inv.client} runs release {version}, which is not in the release catalog; "
                    "nothing was changed",
                    hint=f"restore it under {releases.catalog_dir(settings.home)} or choose one with --release V",
                )
            # No release yet (first install), or the tree's own version that an earlier provision installed.
            out[host] = tree
            continue
        if version not in verified:
            verified[version] = releases.verify_release(version, settings.home).as_bundle()
        out[host] = verified[version]
    return out


def _in_catalog(settings: Settings, version: str) -> bool:
    return (releases.catalog_dir(settings.home) / version).is_dir()


def provision(
    settings: Settings,
    client: str,
    ledger: Ledger,
    *,
    limit: str | None = None,
    dry_run: bool = False,
    tags: Sequence[str] = (),
    limits: Thresholds | None = None,
    release: str | None = None,
    on_event: EventCallback | None = None,
    cancel: Cancellation | None = None,
    task_timeout: int = RunRequest.task_timeout,
    run_timeout: int = RunRequest.run_timeout,
) -> ProvisionResult:
    inv = inventory.load(settings.inventories, client)
    hosts = inv.select(limit)  # an unknown host fails here, before anything runs
    tier = get_tier(inv.tier or "")
    targets = choose_releases(settings, ledger, inv, [h.name for h in hosts], release)
    report = preflight(inv, hosts, limits)
    # A host that fails preflight (down, a tarpit, a changed key, no disk) is left out and reported; the others are
    # converged as usual, so one dead machine never leaves a client's other hosts unprotected.
    refused = {h.host: f"preflight: {h.why}" for h in report.hosts if not h.ok}
    if len(refused) == len(hosts):
        return ProvisionResult(client, report, targets, reasons=refused)
    targets = {host: bundle for host, bundle in targets.items() if host not in refused}
    ensure_client(ledger, inv)
    wiring = collector_extravars(settings, inv, ledger)  # before the run reads the vault: it may add the token
    kind = "check" if dry_run else "provision"
    agent_applied = "agent" in tier.components and (not tags or "agent" in tags)
    groups: dict[str, list[str]] = {}
    for host, bundle in targets.items():
        groups.setdefault(bundle.sha256, []).append(host)
    runs: list[RunResult] = []
    reasons: dict[str, str] = dict(refused)
    for names in sorted(groups.values()):
        bundle = targets[names[0]]
        request = site_request(settings, inv, bundle, limit=",".join(sorted(names)), dry_run=dry_run, tags=tags)
        request = replace(
            request, extravars={**request.extravars, **wiring}, task_timeout=task_timeout, run_timeout=run_timeout
        )
        summary = {"hosts": sorted(names), "release": bundle.version, "sha256": bundle.sha256, "tags": list(tags)}
        result, failed = run_recorded(
            settings, ledger, request, kind=kind, client=client, summary=summary, on_event=on_event, cancel=cancel
        )
        runs.append(result)
        reasons.update(failed)
        if not dry_run and agent_applied:
            done = [h for h, o in result.hosts.items() if o.status in ("ok", "changed")]
            record_releases(ledger, client, done, bundle, result.run_id)
    return ProvisionResult(client, report, targets, tuple(runs), reasons)
