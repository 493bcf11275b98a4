"""Rollout operations as the CLI offers them: plan, start, resume, abort, roll back, status.

``start`` verifies the release (signature and checksums) before anything else: a tampered or unsigned bundle
is refused before a single SSH connection is made. Locks are taken for every client at once (one rollout per
client), and released whatever happens.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets as random
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import OrchestratorError
from ..inventory import Inventory
from ..ledger import Ledger, RolloutRecord
from ..releases import Release, verify_release
from ..settings import Settings
from . import gather
from .execute import EventSink, Executor, RolloutEvent, RolloutPaused, lock_is_stale, roll_back
from .plan import RolloutPlan, plan


@dataclass(frozen=True)
class PlannedRollout:
    release: Release
    plan: RolloutPlan
    inventories: dict[str, Inventory]


def make_plan(
    settings: Settings,
    ledger: Ledger,
    version: str,
    clients: Sequence[str],
    *,
    all_clients: bool = False,
    emergency_reason: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Release, RolloutPlan, dict[str, Inventory]]:
    release = verify_release(version, settings.home)
    invs = gather.select_clients(settings, clients, all_clients)
    inputs = [gather.client_input(inv, ledger, release) for inv in invs]
    result = plan(
        gather.release_input(release),
        inputs,
        now=now or dt.datetime.now(dt.UTC),
        emergency_reason=emergency_reason,
    )
    return release, result, {inv.client: inv for inv in invs}


def new_rollout_uid(version: str) -> str:
    return f"ro-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{version}-{random.token_hex(2)}"


def _hosts_rows(p: RolloutPlan) -> list[tuple[str, str, int, str, str, str | None]]:
    rows = [
        (h.client, h.host, w.index, "pending", p.release.version, h.current_version) for w in p.waves for h in w.hosts
    ]
    rows += [(s.client, s.host, -1, "skipped", p.release.version, None) for s in p.skipped]
    return rows


def start(
    settings: Settings,
    ledger: Ledger,
    version: str,
    clients: Sequence[str],
    *,
    all_clients: bool = False,
    emergency_reason: str | None = None,
    on_event: EventSink,
    stop: threading.Event | None = None,
) -> str:
    release, p, invs = make_plan(
        settings, ledger, version, clients, all_clients=all_clients, emergency_reason=emergency_reason
    )
    if p.is_empty:
        raise OrchestratorError(
            f"nothing to roll out for {version}: no host is eligible now",
            hint="see 'sentryctl rollout plan' for who waits (window, training) or was skipped",
        )
    uid = new_rollout_uid(version)
    wave_clients = sorted({h.client for h in p.hosts})
    ledger.create_rollout(
        uid,
        release_version=release.version,
        track=release.track,
        plan=p.to_json(),
        clients=wave_clients,
        hosts=_hosts_rows(p),
        emergency_reason=emergency_reason,
    )
    _run_locked(settings, ledger, uid, release, p, invs, wave_clients, on_event, stop, resume=False)
    return uid


def resume(
    settings: Settings, ledger: Ledger, uid: str, *, on_event: EventSink, stop: threading.Event | None = None
) -> str:
    record = _require(ledger, uid)
    if record.state not in ("running", "planned"):
        raise OrchestratorError(f"rollout {uid} is {record.state}; only a running or planned one can resume")
    release = verify_release(record.release_version, settings.home)
    p = RolloutPlan.from_json(record.plan)
    invs = {c: inv for c, inv in ((c, gather.select_clients(settings, [c], False)[0]) for c in record.clients)}
    _run_locked(settings, ledger, uid, release, p, invs, list(record.clients), on_event, stop, resume=True)
    return uid


def _run_locked(
    settings: Settings,
    ledger: Ledger,
    uid: str,
    release: Release,
    p: RolloutPlan,
    invs: Mapping[str, Inventory],
    clients: Sequence[str],
    on_event: EventSink,
    stop: threading.Event | None,
    *,
    resume: bool,
) -> None:
    recovered = ledger.acquire_rollout_locks(
        clients, uid, holder_host=socket.gethostname(), holder_pid=os.getpid(), is_stale=lock_is_stale
    )
    for client in recovered:
        on_event(RolloutEvent("lock", f"recovered the lock of {client} from a holder that is gone", client=client))
    try:
        Executor(settings, ledger, release, p, uid, invs, on_event, stop or threading.Event()).run(resume=resume)
    finally:
        ledger.release_rollout_locks(uid)


def abort(ledger: Ledger, uid: str) -> None:
    record = _require(ledger, uid)
    ledger.set_rollout_state(uid, "aborted", {"by": "rollout abort", "was": record.state})
    ledger.release_rollout_locks(uid)


def rollback(settings: Settings, ledger: Ledger, uid: str, *, on_event: EventSink) -> str:
    """Explicitly roll back every host a finished rollout switched, as a new rollout linked to it."""
    record = _require(ledger, uid)
    if record.state not in ("completed", "aborted", "running"):
        raise OrchestratorError(f"rollout {uid} is {record.state}; nothing to roll back explicitly")
    invs = {c: gather.select_clients(settings, [c], False)[0] for c in record.clients}
    child = new_rollout_uid(f"rollback-{record.release_version}")
    # A host with no recorded previous release has nothing to go back to; it is left as it is.
    hosts = [
        (h.client, h.host, h.wave, "pending", h.previous_version, h.previous_version)
        for h in record.hosts
        if h.status in ("healthy", "updated", "updating", "failed") and h.previous_version
    ]
    if not hosts:
        raise OrchestratorError(f"rollout {uid} switched no host; nothing to roll back")
    ledger.create_rollout(
        child,
        release_version=record.release_version,
        track=record.track,
        plan=record.plan,
        clients=list(record.clients),
        hosts=hosts,
        parent_uid=uid,
    )
    for h in hosts:
        ledger.set_rollout_host(child, h[0], h[1], "updated", previous_version=h[5])
    ledger.acquire_rollout_locks(
        list(record.clients), child, holder_host=socket.gethostname(), holder_pid=os.getpid(), is_stale=lock_is_stale
    )
    try:
        ledger.set_rollout_state(child, "rolling_back", {"rollback_of": uid})
        ok = roll_back(settings, ledger, child, invs, record.release_version, on_event)
        ledger.set_rollout_state(child, "rolled_back" if ok else "failed", {"rollback_of": uid})
    finally:
        ledger.release_rollout_locks(child)
    if not ok:
        raise OrchestratorError(
            f"rollback {child} of {uid} failed on some hosts", hint=f"sentryctl rollout status {child}"
        )
    return child


def _require(ledger: Ledger, uid: str) -> RolloutRecord:
    record = ledger.rollout(uid)
    if record is None:
        raise OrchestratorError(f"no rollout {uid!r}", hint="list them with 'sentryctl rollout status'")
    return record


__all__ = ["RolloutPaused", "abort", "make_plan", "resume", "rollback", "start"]
