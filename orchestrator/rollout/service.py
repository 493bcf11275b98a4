"""Rollout operations as the CLI offers them: plan, start, resume, abort, roll back, status.

``start`` verifies the release (signature and checksums) before anything else: a tampered or unsigned bundle
is refused before a single SSH connection is made. Locks are taken for every client at once (one rollout per
client), and released whatever happens.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import OrchestratorError
from ..inventory import Inventory
from ..ledger import Ledger, RolloutLocked, RolloutRecord
from ..ledger.locks import lock_is_stale
from ..ledger.records import NO_WAVE
from ..releases import Release, verify_release
from ..settings import Settings
from .errors import RolloutPaused
from .events import EventSink, RolloutEvent
from .execute import Executor
from .inputs import client_input, release_input, select_clients
from .orphans import settle_orphaned_runs
from .plan import ClientInput, PlannedWave, RolloutPlan, plan
from .rollback import roll_back


@dataclass(frozen=True)
class PlannedRollout:
    """A verified release and its plan, as shown to the user; ``start`` runs exactly this."""

    release: Release
    plan: RolloutPlan
    inventories: dict[str, Inventory]
    inputs: tuple[ClientInput, ...]


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
    planned = prepare(
        settings, ledger, version, clients, all_clients=all_clients, emergency_reason=emergency_reason, now=now
    )
    return planned.release, planned.plan, planned.inventories


def prepare(
    settings: Settings,
    ledger: Ledger,
    version: str,
    clients: Sequence[str],
    *,
    all_clients: bool = False,
    emergency_reason: str | None = None,
    now: dt.datetime | None = None,
) -> PlannedRollout:
    """Verify the release (before any SSH connection) and plan it: what ``rollout plan`` shows and ``start`` runs."""
    release = verify_release(version, settings.home)
    invs = select_clients(settings, clients, all_clients)
    inputs = [client_input(inv, ledger, release) for inv in invs]
    result = plan(
        release_input(release),
        inputs,
        now=now or dt.datetime.now(dt.UTC),
        emergency_reason=emergency_reason,
    )
    return PlannedRollout(release, result, {inv.client: inv for inv in invs}, tuple(inputs))


def new_rollout_uid(version: str) -> str:
    return f"ro-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{version}-{secrets.token_hex(2)}"


def current_clients(p: RolloutPlan) -> list[str]:
    """Clients with nothing to do: every host skipped (already there, or refused), none waiting."""
    busy = set(p.clients) | {w.client for w in p.waiting}
    return sorted({s.client for s in p.skipped} - busy)


def _hosts_rows(planned: PlannedRollout, members: Sequence[str]) -> list[tuple[str, str, int, str, str, str | None]]:
    p = planned.plan
    rows = [
        (h.client, h.host, w.index, "pending", p.release.version, h.current_version) for w in p.waves for h in w.hosts
    ]
    skipped = {(s.client, s.host) for s in p.skipped}
    rows += [(s.client, s.host, NO_WAVE, "skipped", p.release.version, None) for s in p.skipped if s.client in members]
    waiting = {w.client for w in p.waiting if w.reason == "window"}
    rows += [
        (h.client, h.host, NO_WAVE, "deferred", p.release.version, h.current_version)
        for c in planned.inputs
        if c.name in waiting
        for h in c.hosts
        if (h.client, h.host) not in skipped
    ]
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
    """Plan and execute at once (for callers that show no plan first, such as the demo)."""
    planned = prepare(settings, ledger, version, clients, all_clients=all_clients, emergency_reason=emergency_reason)
    return execute(settings, ledger, planned, on_event=on_event, stop=stop)


def execute(
    settings: Settings,
    ledger: Ledger,
    planned: PlannedRollout,
    *,
    on_event: EventSink,
    stop: threading.Event | None = None,
    on_created: Callable[[str], None] | None = None,
) -> str:
    """Execute exactly ``planned`` (the plan the user saw): refused if the ledger or the inventories moved since.

    A client with nothing to do is reported and left out; a client outside its window stays part of the rollout
    (``waiting_window``) so that ``resume`` brings it the release when its window opens."""
    p = planned.plan
    again = prepare(
        settings, ledger, p.release.version, list(planned.inventories), emergency_reason=p.emergency_reason,
        now=p.planned_at,
    )  # fmt: skip
    if again.plan.to_json() != p.to_json():
        raise OrchestratorError(
            f"the plan for {p.release.version} changed since it was made (the ledger or an inventory moved: another "
            "rollout, a host changed); nothing was started",
            hint="look at the new plan and start again: sentryctl rollout start ...",
        )
    window_waiting = sorted({w.client for w in p.waiting if w.reason == "window"})
    if p.is_empty and not window_waiting:
        raise OrchestratorError(
            f"nothing to roll out for {p.release.version}: no host is eligible now",
            hint="see 'sentryctl rollout plan' for who waits (window, training) or was skipped",
        )
    for client in current_clients(p):
        on_event(RolloutEvent("wave", f"nothing to do for {client}: every host skipped (see the plan)", client=client))
    members = sorted(set(p.clients) | set(window_waiting))
    uid = new_rollout_uid(p.release.version)
    ledger.create_rollout(
        uid,
        release_version=planned.release.version,
        track=planned.release.track,
        plan=p.to_json(),
        clients=members,
        hosts=_hosts_rows(planned, members),
        emergency_reason=p.emergency_reason,
    )
    if on_created is not None:
        on_created(uid)
    invs = {c: planned.inventories[c] for c in members}
    try:
        _run_locked(settings, ledger, uid, planned.release, p, invs, members, on_event, stop, resume=False)
    except RolloutLocked as exc:
        # Refused before it touched anything: final, so that no 'rollout resume' ever replays it later.
        ledger.set_rollout_state(uid, "aborted", {"refused": exc.message})
        raise
    return uid


RESUMABLE = ("running", "planned", "completed_with_failures", "waiting_window")


def resume(
    settings: Settings, ledger: Ledger, uid: str, *, on_event: EventSink, stop: threading.Event | None = None
) -> str:
    """Carry a rollout on: re-check every host, bring the release to pending hosts, and to clients whose window
    opened since (a client still outside it keeps waiting)."""
    record = _require(ledger, uid)
    if record.state not in RESUMABLE:
        raise OrchestratorError(
            f"rollout {uid} is {record.state}; only a {', '.join(RESUMABLE[:-1])} or {RESUMABLE[-1]} one can resume"
        )
    release = verify_release(record.release_version, settings.home)
    invs = {c: select_clients(settings, [c], False)[0] for c in record.clients}
    p = replan(ledger, record, release, invs)
    _run_locked(settings, ledger, uid, release, p, invs, list(record.clients), on_event, stop, resume=True)
    return uid


def replan(ledger: Ledger, record: RolloutRecord, release: Release, invs: Mapping[str, Inventory]) -> RolloutPlan:
    """Plan the rollout again against the ledger now, with the planner's rules, limited to its own hosts: a host
    that reached the release or a newer one since (another rollout) is skipped and never downgraded; a client
    whose window opened since gets its waves, one still outside keeps waiting. Skipped hosts are recorded so."""
    stored = RolloutPlan.from_json(record.plan)
    inputs = [client_input(invs[c], ledger, release) for c in record.clients]
    fresh = plan(release_input(release), inputs, now=dt.datetime.now(dt.UTC), emergency_reason=stored.emergency_reason)
    rows = {(h.client, h.host): h for h in record.hosts if h.status != "skipped"}
    waves: list[PlannedWave] = []
    for w in fresh.waves:
        hosts = tuple(h for h in w.hosts if (h.client, h.host) in rows)
        if hosts:
            waves.append(PlannedWave(index=len(waves), name=w.name, hosts=hosts))
    for s in fresh.skipped:
        row = rows.get((s.client, s.host))
        if row is not None and row.status != "healthy":
            ledger.set_rollout_host(record.uid, s.client, s.host, "skipped", detail={"why": f"on resume: {s.reason}"})
    return dataclasses.replace(fresh, waves=tuple(waves))


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
    holder = (socket.gethostname(), os.getpid())
    recovered = ledger.acquire_rollout_locks(
        clients, uid, holder_host=holder[0], holder_pid=holder[1], is_stale=lock_is_stale
    )
    for client in recovered:
        on_event(RolloutEvent("lock", f"recovered the lock of {client} from a holder that is gone", client=client))
    try:
        if resume:  # holding the locks proves the last holder dead; its ansible-playbook may still switch hosts
            settle_orphaned_runs(settings, ledger, uid, on_event)
        executor = Executor(settings, ledger, release, p, uid, invs, on_event, stop or threading.Event(), holder=holder)
        executor.run(resume=resume)
    finally:
        ledger.release_rollout_locks(uid)


def abort(ledger: Ledger, uid: str) -> None:
    record = _require(ledger, uid)
    ledger.set_rollout_state(uid, "aborted", {"by": "rollout abort", "was": record.state})
    ledger.release_rollout_locks(uid)


def rollback(settings: Settings, ledger: Ledger, uid: str, *, on_event: EventSink) -> str:
    """Explicitly roll back every host a finished rollout switched, as a new rollout linked to it."""
    record = _require(ledger, uid)
    if record.state not in ("completed", "completed_with_failures", "waiting_window", "aborted", "running"):
        raise OrchestratorError(f"rollout {uid} is {record.state}; nothing to roll back explicitly")
    invs = {c: select_clients(settings, [c], False)[0] for c in record.clients}
    child = new_rollout_uid(f"rollback-{record.release_version}")
    # A host with no recorded previous release has nothing to go back to; it is left as it is.
    hosts = [
        (h.client, h.host, h.wave, "pending", h.previous_version, h.previous_version)
        for h in record.hosts
        # "pending": left without the release at the end (completed_with_failures); it may have been switched.
        if h.status in ("healthy", "updated", "updating", "failed", "pending") and h.previous_version
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


__all__ = ["PlannedRollout", "RolloutPaused", "abort", "execute", "make_plan", "prepare", "resume", "rollback", "start"]
