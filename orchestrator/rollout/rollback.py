"""Rolling back: switch exactly the hosts a rollout touched back to their previous release, and verify them.

A host is switched back only if its release link points at the bad version (asked on the host, not taken from the
bookkeeping); a host never switched is only checked healthy on what it runs. Each host's outcome is in the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import __version__, paths, remote, secrets
from ..errors import RemoteError
from ..inventory import Host, Inventory
from ..ledger import Ledger
from ..runner import RunRequest
from ..runs import Engine, default_engine, run_recorded
from ..settings import Settings
from .events import EventSink, RolloutEvent
from .probe import wait_healthy


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
            if h not in switched:
                if h.status == "unreachable":
                    # The playbook never reached it, so nothing was switched; it stays on record as unreachable.
                    detail = {"switched": False, "why": "unreachable during the rollout; check it by hand"}
                    ledger.set_rollout_host(uid, client, h.host, "unreachable", detail=detail)
                    continue
                # Never switched: nothing to undo; make sure it is healthy on what it runs.
                verdict = wait_healthy(inv, [inv.host(h.host)], h.previous_version, timeout=health_timeout)[h.host]
                status = "rolled_back" if verdict.healthy else "rollback_failed"
                all_ok &= verdict.healthy
                ledger.set_rollout_host(
                    uid, client, h.host, status, detail={"switched": False, "health": verdict.to_json()}
                )
        if not switched:
            continue
        for h in switched:
            ledger.set_rollout_host(uid, client, h.host, "rolling_back")
        request = RunRequest(
            playbook=paths.playbook("agent_rollback.yml"),
            inventory=inv,
            label=f"rollback-{client}",
            limit=",".join(h.host for h in switched),
            vault=secrets.run_files(settings, inv),
            # The role's own wait, bounded like the rollout's: retries x 2 s within the track's health timeout.
            extravars={"sentry_agent_health_retries": max(1, int(health_timeout) // 2), "sentry_agent_health_delay": 2},
        )
        summary = {"rollout": uid, "hosts": [h.host for h in switched]}
        result, _ = run_recorded(settings, ledger, request, kind="rollback", client=client, summary=summary,
                                 engine=engine)  # fmt: skip
        for h in switched:
            after = wait_healthy(inv, [inv.host(h.host)], h.previous_version, timeout=health_timeout)[h.host]
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
