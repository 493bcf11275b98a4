"""Rolling back: switch exactly the hosts a rollout touched back to their previous release, and verify them.

A host is switched back only if its release link points at the bad version (asked on the host, not taken from the
bookkeeping); a host never switched is only checked healthy on what it runs. Each host's outcome is in the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import __version__, paths, remote, vault
from ..errors import RemoteError
from ..inventory import Host, Inventory
from ..ledger import Ledger
from ..ledger.records import RolloutHostRecord
from ..runner import RunRequest
from ..runs import Engine, default_engine, run_recorded
from ..settings import Settings
from .events import EventSink, RolloutEvent
from .probe import Health, wait_healthy


def current_target(inv: Inventory, host: Host) -> str | None:
    """Which release /opt/sentry/current points at on the host (None when it cannot be read)."""
    try:
        client = remote.connect(inv, host)
    except RemoteError:
        return None
    try:
        out = remote.run(client, "readlink /opt/sentry/current", timeout=10).stdout.strip()
    except RemoteError:
        return None
    finally:
        client.close()
    return out.rsplit("/", 1)[-1] or None


def roll_back(
    settings: Settings,
    ledger: Ledger,
    uid: str,
    inventories: Mapping[str, Inventory],
    bad_version: str,
    on_event: EventSink,
    *,
    engine: Engine = default_engine,
    health_timeout: float = 30.0,
) -> bool:
    """Switch back exactly the hosts of rollout ``uid`` that run ``bad_version``; verify them healthy on their
    previous release within ``health_timeout``. Returns True when every touched host ends healthy."""
    record = ledger.rollout(uid)
    assert record is not None
    touched = [h for h in record.hosts if h.status in ("updating", "updated", "healthy", "failed", "unreachable")]
    all_ok = True
    for client in sorted({h.client for h in touched}):
        inv = inventories[client]
        mine = [h for h in touched if h.client == client]
        switched = [h for h in mine if current_target(inv, inv.host(h.host)) == bad_version]
        for h in mine:
            if h not in switched and h.status == "unreachable":
                # The playbook never reached it, so nothing was switched; it stays on record as unreachable.
                detail = {"switched": False, "why": "unreachable during the rollout; check it by hand"}
                ledger.set_rollout_host(uid, client, h.host, "unreachable", detail=detail)
        # Never switched: nothing to undo; make sure each is healthy on what it runs (one wait for them all).
        unswitched = [h for h in mine if h not in switched and h.status != "unreachable"]
        if unswitched:
            verdicts = _healthy(settings, inv, unswitched, health_timeout)
            for h in unswitched:
                verdict = verdicts[h.host]
                all_ok &= verdict.healthy
                ledger.set_rollout_host(uid, client, h.host, "rolled_back" if verdict.healthy else "rollback_failed",
                                        detail={"switched": False, "health": verdict.to_json()})  # fmt: skip
        if not switched:
            continue
        for h in switched:
            ledger.set_rollout_host(uid, client, h.host, "rolling_back")
        request = RunRequest(
            playbook=paths.playbook("agent_rollback.yml"),
            inventory=inv,
            label=f"rollback-{client}",
            limit=",".join(h.host for h in switched),
            vault=vault.run_files(settings, inv),
            # The role's own health wait is off, as in the waves: the one wait below, bounded by the track's
            # health timeout, judges every switched host at once.
            extravars={"sentry_agent_health_enabled": False},
        )
        summary = {"rollout": uid, "hosts": [h.host for h in switched]}
        result, _ = run_recorded(settings, ledger, request, kind="rollback", client=client, summary=summary,
                                 engine=engine)  # fmt: skip
        verdicts = _healthy(settings, inv, switched, health_timeout)
        for h in switched:
            after = verdicts[h.host]
            healthy = after.healthy and (
                result.hosts.get(h.host) is not None and result.hosts[h.host].status in ("ok", "changed")
            )
            all_ok &= healthy
            ledger.set_rollout_host(
                uid, client, h.host, "rolled_back" if healthy else "rollback_failed", detail=after.to_json()
            )
            if healthy and h.previous_version:
                ledger.set_host_release(
                    client, h.host, stack_version=__version__, release_version=h.previous_version,
                    release_track=record.track, run_uid=result.run_id,
                )  # fmt: skip
            on_event(RolloutEvent("rollback", after.detail, client=client, host=h.host, ok=healthy))
    return all_ok


def _healthy(
    settings: Settings, inv: Inventory, hosts: Sequence[RolloutHostRecord], timeout: float
) -> dict[str, Health]:
    """Each host healthy on its previous release, all hosts in parallel, the wait bounded by ``timeout`` (hosts
    whose previous releases differ, which a rollout seldom leaves, are waited for one version after the other)."""
    out: dict[str, Health] = {}
    by_version: dict[str | None, list[str]] = {}
    for h in hosts:
        by_version.setdefault(h.previous_version, []).append(h.host)
    for version, names in by_version.items():
        out.update(wait_healthy(inv, [inv.host(n) for n in names], version, timeout=timeout, home=settings.home))
    return out
