"""``defence push``: plan a pack over clients with the rollout planner and run it with :mod:`.executor`.

The plan is the rollout planner's (:func:`orchestrator.rollout.plan.plan`), with each client's tier policy as its
track (canary: one host per client, then the tier's cumulative waves; the window gate unless the tier is 24/7 or
an emergency was declared, recorded with its reason) and the pack's own skip rule (a host already assigned the
pack is left out). One push at a time per client: the push locks are taken like rollout locks (a dead holder's
lock is recovered, by the same staleness rule). ``resume`` carries on a push whose process died: confirmed hosts
are never assigned again, a canary dwell goes on from when it started, clients whose window opened get their waves.
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
from typing import Any

from .. import fleet, window
from ..inventory import Inventory
from ..ledger import Ledger
from ..ledger.defence_pushes import host_key
from ..ledger.locks import lock_is_stale
from ..rollout.events import EventSink, RolloutEvent
from ..rollout.inputs import select_clients
from ..rollout.plan import ClientInput, HostInput, PlannedWave, ReleaseInput, RolloutPlan, plan
from ..settings import Settings
from ..tiers import get_tier
from ..track_names import HOTFIX
from .errors import DefenceError
from .executor import PushExecutor, PushHalted, PushPaused, PushStopped
from .policy import Policy, TierPolicy, load_policy

__all__ = ["PlannedPush", "PushHalted", "PushPaused", "PushStopped", "Timing", "prepare", "resume", "start"]

RESUMABLE = ("planned", "running", "waiting_window")


@dataclass(frozen=True)
class Timing:
    """The executor's knobs: how often the controller reads heartbeats, the dwell override (recorded), the clock
    and the wait between polls (tests and the bench inject them)."""

    poll_seconds: float = 2.0
    dwell_seconds: int | None = None
    clock: Callable[[], dt.datetime] | None = None
    wait: Callable[[float], bool] | None = None


@dataclass(frozen=True)
class PlannedPush:
    version: str
    digest: str
    plan: RolloutPlan
    policies: Mapping[str, TierPolicy]
    inputs: Mapping[str, ClientInput]
    inventories: Mapping[str, Inventory]
    dwell_seconds: int
    dwell_override: bool
    gap_intervals: float

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "policies": {c: p.to_json() for c, p in sorted(self.policies.items())},
            "dwell_seconds": self.dwell_seconds,
            "dwell_override": self.dwell_override,
            "gap_intervals": self.gap_intervals,
        }


def pack_skip(assigned: Mapping[tuple[str, str], str | None]) -> Callable[[ReleaseInput, HostInput], str | None]:
    """The pack's skip rule for the planner: a host already assigned this pack has nothing to do."""

    def rule(release: ReleaseInput, host: HostInput) -> str | None:
        if assigned.get((host.client, host.host)) == release.version:
            return f"already assigned pack {release.version}"
        return None

    return rule


def prepare(
    settings: Settings,
    ledger: Ledger,
    version: str,
    clients: Sequence[str],
    *,
    all_clients: bool = False,
    emergency_reason: str | None = None,
    dwell_seconds: int | None = None,
    now: dt.datetime | None = None,
    policy: Policy | None = None,
    skip: Callable[[ReleaseInput, HostInput], str | None] | None = None,
) -> PlannedPush:
    """The plan of pushing pack ``version`` (recorded in the ledger by ``defence build``) to ``clients``."""
    pack = ledger.pack(version)
    if pack is None:
        raise DefenceError(f"no defence pack {version!r} in the ledger", hint="build it: sentryctl defence build ...")
    policy = policy or load_policy()
    invs = select_clients(settings, clients, all_clients)
    assigned = {(a.client, a.host): a.version for a in ledger.assignments()}
    inputs: dict[str, ClientInput] = {}
    policies: dict[str, TierPolicy] = {}
    for inv in invs:
        record = ledger.client(inv.client)
        if record is None:
            raise DefenceError(f"client {inv.client} is not in the ledger", hint="onboard it: sentryctl client new")
        tier = get_tier(inv.tier or record.tier)
        policies[inv.client] = policy.of(tier.name)
        live = {h.name for h in record.hosts}
        inputs[inv.client] = ClientInput(
            name=inv.client,
            tier_name=tier.name,
            around_the_clock=tier.around_the_clock,
            window=window.parse(str(inv.meta.get("window") or "always")),
            hosts=tuple(
                HostInput(inv.client, h.name, assigned.get((inv.client, h.name))) for h in inv.hosts if h.name in live
            ),
            training=None,
            track=policies[inv.client].track(),
        )
    p = plan(
        ReleaseInput(version=version, track=HOTFIX),
        list(inputs.values()),
        now=now or dt.datetime.now(dt.UTC),
        emergency_reason=emergency_reason,
        skip=skip or pack_skip(assigned),
    )
    active = p.clients or tuple(inputs)
    dwell = dwell_seconds if dwell_seconds is not None else max(policies[c].dwell_seconds for c in active)
    if dwell < 0:
        raise DefenceError("the dwell cannot be negative", hint="pass --dwell as e.g. 30s or 5m")
    return PlannedPush(
        version=version,
        digest=pack.digest,
        plan=p,
        policies=policies,
        inputs=inputs,
        inventories={inv.client: inv for inv in invs},
        dwell_seconds=dwell,
        dwell_override=dwell_seconds is not None,
        gap_intervals=policy.gap_intervals,
    )


def new_push_uid(version: str) -> str:
    return f"dp-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{version}-{secrets.token_hex(2)}"


def start(
    settings: Settings,
    ledger: Ledger,
    planned: PlannedPush,
    *,
    on_event: EventSink,
    timing: Timing = Timing(),
    stop: threading.Event | None = None,
    on_created: Callable[[str], None] | None = None,
) -> str:
    """Record the push and execute it. Raises PushHalted (exit 1), PushPaused (waiting for a window, exit 3)."""
    p = planned.plan
    waiting = sorted({w.client for w in p.waiting if w.reason == "window"})
    if p.is_empty and not waiting:
        raise DefenceError(
            f"nothing to push for {planned.version}: every host already has it or none is eligible",
            hint="see 'sentryctl defence status' and the plan's skipped hosts",
        )
    members = sorted(set(p.clients) | set(waiting))
    hosts: dict[str, dict[str, Any]] = {}
    for w in p.waves:
        for h in w.hosts:
            hosts[host_key(h.client, h.host)] = {"wave": w.index, "wave_name": w.name, "state": "pending"}
    for c in waiting:
        for h in planned.inputs[c].hosts:
            hosts.setdefault(host_key(c, h.host), {"wave": None, "wave_name": None, "state": "waiting"})
    uid = new_push_uid(planned.version)
    ledger.create_push(
        uid,
        version=planned.version,
        digest=planned.digest,
        clients=members,
        plan=planned.to_json(),
        hosts=hosts,
        emergency_reason=p.emergency_reason,
        dwell_override_seconds=planned.dwell_seconds if planned.dwell_override else None,
    )
    if on_created is not None:
        on_created(uid)
    if p.emergency_reason:
        on_event(RolloutEvent("gate", f"emergency (recorded): {p.emergency_reason}; maintenance windows ignored"))
    for wt in p.waiting:
        on_event(RolloutEvent("gate", f"waiting: {wt.detail}", client=wt.client, ok=False))
    _run_locked(settings, ledger, uid, planned, p.waves, members, on_event, timing, stop)
    return uid


def resume(
    settings: Settings,
    ledger: Ledger,
    uid: str,
    *,
    on_event: EventSink,
    timing: Timing = Timing(),
    stop: threading.Event | None = None,
) -> str:
    """Carry a push on (its process died, or a client waited for its window): the stored plan's waves without the
    hosts already confirmed, plus the waves of clients whose window opened since."""
    record = ledger.push(uid)
    if record is None:
        raise DefenceError(f"no push {uid!r}", hint="list them with 'sentryctl defence status'")
    if record.state not in RESUMABLE:
        raise DefenceError(f"push {uid} is {record.state}; only a {', '.join(RESUMABLE)} push can resume")
    stored = RolloutPlan.from_json(record.plan["plan"])
    dwell = int(record.plan["dwell_seconds"]) if timing.dwell_seconds is None else timing.dwell_seconds
    confirmed = {k for k, h in record.hosts.items() if h.get("state") == "confirmed"}
    waiting = [w.client for w in stored.waiting if w.reason == "window"]
    planned = prepare(
        settings, ledger, record.version, list(record.clients), emergency_reason=stored.emergency_reason,
        dwell_seconds=dwell, skip=lambda _r, h: "confirmed" if host_key(h.client, h.host) in confirmed else None,
    )  # fmt: skip
    waves = list(stored.waves)
    opened = [c for c in waiting if c in planned.plan.clients]
    for fresh in planned.plan.waves:
        extra = tuple(h for h in fresh.hosts if h.client in opened)
        if not extra:
            continue
        at = next((i for i, w in enumerate(waves) if w.name == fresh.name), None)
        if at is None:
            waves.append(PlannedWave(len(waves), fresh.name, extra))
        else:
            waves[at] = dataclasses.replace(waves[at], hosts=waves[at].hosts + extra)
    updates = {
        host_key(h.client, h.host): {"state": "pending", "wave_name": w.name}
        for w in waves
        for h in w.hosts
        if h.client in opened
    }
    if updates:
        ledger.set_push_hosts(uid, updates)
    _run_locked(settings, ledger, uid, planned, tuple(waves), list(record.clients), on_event, timing, stop)
    return uid


def _run_locked(
    settings: Settings,
    ledger: Ledger,
    uid: str,
    planned: PlannedPush,
    waves: tuple[PlannedWave, ...],
    clients: Sequence[str],
    on_event: EventSink,
    timing: Timing,
    stop: threading.Event | None,
) -> None:
    holder = (socket.gethostname(), os.getpid())
    recovered = ledger.acquire_push_locks(
        clients, uid, holder_host=holder[0], holder_pid=holder[1], is_stale=lock_is_stale
    )
    for client in recovered:
        on_event(RolloutEvent("lock", f"recovered the push lock of {client} from a holder that is gone", client=client))
    intervals: dict[tuple[str, str], float] = {}
    for c in clients:
        record = ledger.client(c)
        if record is not None:
            intervals.update({(c, h): v for h, v in fleet.expected_intervals(settings.inventories, record).items()})
    executor = PushExecutor(
        ledger=ledger,
        uid=uid,
        version=planned.version,
        digest=planned.digest,
        waves=waves,
        inputs=planned.inputs,
        policies=planned.policies,
        intervals=intervals,
        dwell_seconds=planned.dwell_seconds,
        gap_intervals=planned.gap_intervals,
        emergency=planned.plan.emergency_reason is not None,
        on_event=on_event,
        poll_seconds=timing.poll_seconds,
        stop=stop or threading.Event(),
        wait=timing.wait,
        holder=holder,
    )
    if timing.clock is not None:
        executor.clock = timing.clock
    in_waves = {h.client for w in waves for h in w.hosts}
    for wt in planned.plan.waiting:
        if wt.reason == "window" and wt.client not in in_waves:
            executor.held[wt.client] = f"{wt.detail} (opens {wt.until})"
    try:
        executor.run()
    finally:
        ledger.release_push_locks(uid)
