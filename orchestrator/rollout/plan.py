"""The rollout planner: a pure function from a release and the clients' state to a plan of waves.

No I/O, no clock, no ledger: the orchestrator builds the inputs (from inventories, the track files and the
ledger) and passes ``now``. The plan is data (its records are :mod:`.plan_model`); the executor stores
``to_json()`` in the ledger and reloads it with ``from_json()`` to resume.

How hosts are chosen:
- a host already on the release, a host on a newer release (unless this is a rollback) and a host below the
  release's ``min_previous_version`` are skipped, each with its reason;
- a client whose feature release lacks a training sign-off waits (reason ``training``); a client outside its
  maintenance window waits (reason ``window``, with when it opens) unless its tier is around the clock, its track
  has no window gate, or an emergency was declared (the plan records why);
- every other client's eligible hosts, sorted by name, are cut into the track's cumulative waves, and the same
  wave of every client merges into one planned wave (the canary wave has one host per client).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

from ..track_names import FEATURE, HOTFIX, TRACK_NAMES
from ..versions import compare, is_valid, version_key
from .errors import RolloutError
from .plan_model import (
    SCHEMA,
    ClientGates,
    ClientInput,
    HostInput,
    PlannedWave,
    ReleaseInput,
    RolloutPlan,
    Skipped,
    TrainingInput,
    Waiting,
)
from .tracks import FailureBudget, WaveSpec

# The plan's records live in .plan_model; importers of the planner get them from here too.
__all__ = [
    "SCHEMA",
    "ClientGates",
    "ClientInput",
    "HostInput",
    "PlannedWave",
    "ReleaseInput",
    "RolloutPlan",
    "Skipped",
    "TrainingInput",
    "Waiting",
    "plan",
    "skip_reason",
]

# Why a host is left out of a plan (None: it takes part). The release rule is skip_reason; a caller that plans
# something else through the same waves and windows (a defence pack) passes its own.
SkipRule = Callable[[ReleaseInput, HostInput], str | None]


def plan(
    release: ReleaseInput,
    clients: Sequence[ClientInput],
    *,
    now: dt.datetime,
    emergency_reason: str | None = None,
    rollback: bool = False,
    skip: SkipRule | None = None,
) -> RolloutPlan:
    """Plan ``release`` over ``clients`` as of ``now`` (timezone-aware). Pure: same inputs, same plan. ``skip``
    replaces the release's own rule of which hosts are left out (:func:`skip_reason`)."""
    _check_inputs(release, clients, now)
    if emergency_reason is not None:
        emergency_reason = emergency_reason.strip()
        if not emergency_reason:
            raise RolloutError("an emergency needs a reason", hint="say why the maintenance windows are overridden")

    skipped: list[Skipped] = []
    waiting: list[Waiting] = []
    active: list[tuple[ClientInput, list[HostInput]]] = []
    for client in sorted(clients, key=lambda c: c.name):
        eligible = []
        for host in sorted(client.hosts, key=lambda h: h.host):
            reason = skip(release, host) if skip is not None else skip_reason(release, host, rollback=rollback)
            if reason is None:
                eligible.append(host)
            else:
                skipped.append(Skipped(client.name, host.host, reason))
        if not eligible:
            continue  # nothing to change here, so nothing to wait for
        held = _waiting(release, client, now, emergency=emergency_reason is not None)
        if held is not None:
            waiting.append(held)
        else:
            active.append((client, eligible))

    waves = _waves(active)
    # Each client's waves run that client's own gates (client_gates). The plan-wide settings are the strictest of
    # the active clients' (with none active, of all clients given): what the plan shows as its summary, and
    # the soak between merged waves.
    tracks = [c.track for c, _ in active] or [c.track for c in sorted(clients, key=lambda c: c.name)]
    return RolloutPlan(
        release=release,
        track_name=release.track,
        waves=waves,
        gates=tuple(dict.fromkeys(g for t in tracks for g in t.gates)),
        soak_seconds=max(t.soak_seconds for t in tracks),
        health_timeout_seconds=max(t.health_timeout_seconds for t in tracks),
        failure_budget=_strictest(t.failure_budget for t in tracks),
        waiting=tuple(waiting),
        skipped=tuple(skipped),
        emergency_reason=emergency_reason,
        rollback=rollback,
        planned_at=now,
        client_gates={
            c.name: ClientGates(c.track.gates, c.track.health_timeout_seconds, c.track.failure_budget)
            for c in sorted(clients, key=lambda c: c.name)
        },
    )


def _check_inputs(release: ReleaseInput, clients: Sequence[ClientInput], now: dt.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise RolloutError("the planning time has no time zone", hint="pass now as an aware datetime, e.g. in UTC")
    version_key(release.version)
    if release.track not in TRACK_NAMES:
        raise RolloutError(
            f"release {release.version} has unknown track {release.track!r}", hint=f"use {' or '.join(TRACK_NAMES)}"
        )
    if release.min_previous_version is not None:
        version_key(release.min_previous_version)
    if release.track == HOTFIX and release.requires_training:
        raise RolloutError(
            f"hotfix {release.version} names training {release.requires_training!r}",
            hint="hotfixes never wait for training; ship it on the feature track",
        )
    if not clients:
        raise RolloutError("nothing to plan: no clients given", hint="name at least one client")
    seen: set[str] = set()
    for client in clients:
        if client.name in seen:
            raise RolloutError(f"client {client.name} is given twice", hint="pass each client once")
        seen.add(client.name)
        if client.track.name != release.track:
            raise RolloutError(
                f"client {client.name} was given track {client.track.name!r} for a {release.track} release",
                hint="pass the client's effective track of the release's track name",
            )
        names: set[str] = set()
        for host in client.hosts:
            if host.client != client.name or host.host in names:
                raise RolloutError(
                    f"host {host.client}/{host.host} is listed twice or under client {client.name}",
                    hint="each host belongs to exactly one client, once",
                )
            names.add(host.host)


def skip_reason(release: ReleaseInput, host: HostInput, *, rollback: bool) -> str | None:
    current = host.current_version
    if current == release.version:
        return f"already runs {current}"
    if current is not None and not is_valid(current):
        return f"runs an unreadable version {current!r}"
    if current is not None and compare(current, release.version) > 0 and not rollback:
        return f"downgrade refused (runs {current}; use rollout rollback)"
    minimum = release.min_previous_version
    if minimum is not None and (current is None or compare(current, minimum) < 0):
        return f"needs at least {minimum} first"
    return None


def _waiting(release: ReleaseInput, client: ClientInput, now: dt.datetime, *, emergency: bool) -> Waiting | None:
    if release.track == FEATURE or client.track.requires_training:
        training = client.training
        if training is None or not training.signed_off:
            module = release.requires_training
            subject = f"training {module!r}" if module else f"training for release {release.version}"
            scheduled = training.scheduled_for if training is not None else None
            when = f"scheduled for {scheduled}" if scheduled else "no session scheduled"
            return Waiting(client.name, "training", f"{subject} not signed off; {when}", scheduled)
    gated = "window" in client.track.gates and not client.around_the_clock and not emergency
    if gated and not client.window.is_open(now):
        return Waiting(
            client.name,
            "window",
            f"outside maintenance window {client.window.text!r} (tier {client.tier_name})",
            client.window.next_open(now).isoformat(),
        )
    return None


def _slices(client: ClientInput, hosts: Sequence[HostInput]) -> dict[str, tuple[HostInput, ...]]:
    """Cut a client's eligible hosts (sorted) into its track's cumulative waves."""
    out: dict[str, tuple[HostInput, ...]] = {}
    taken = 0
    for spec in client.track.waves:
        if spec.hosts_per_client is not None:
            target = min(taken + spec.hosts_per_client, len(hosts))
        else:
            target = max(taken, _ceil_percent(_percent(spec), len(hosts)))
        out[spec.name] = tuple(hosts[taken:target])
        taken = target
    if taken < len(hosts):
        raise RolloutError(
            f"track {client.track.name} of client {client.name} leaves {len(hosts) - taken} of {len(hosts)} hosts out",
            hint="its last wave must be percent: 100",
        )
    return out


def _percent(spec: WaveSpec) -> int:
    assert spec.percent is not None  # WaveSpec holds exactly one of its two sizes
    return spec.percent


def _ceil_percent(percent: int, count: int) -> int:
    return -(-percent * count // 100)


def _wave_order(clients: Iterable[ClientInput]) -> list[str]:
    """All wave names in one order consistent with every client's track (overrides may add or drop waves).

    A name only some clients have goes as late as it can: just before the next name its track shares with the
    order so far.
    """
    order: list[str] = []
    for client in clients:
        pending: list[str] = []
        previous = -1
        for spec in client.track.waves:
            if spec.name not in order:
                pending.append(spec.name)
                continue
            position = order.index(spec.name)
            if position < previous:
                raise RolloutError(
                    f"client {client.name} orders wave {spec.name!r} differently from other clients",
                    hint="keep shared wave names in the same order in every tracks.yml",
                )
            order[position:position] = pending
            previous = position + len(pending)
            pending = []
        order.extend(pending)
    return order


def _waves(active: Sequence[tuple[ClientInput, Sequence[HostInput]]]) -> tuple[PlannedWave, ...]:
    slices = [_slices(client, hosts) for client, hosts in active]
    waves: list[PlannedWave] = []
    for name in _wave_order(client for client, _ in active):
        hosts = tuple(h for per_client in slices for h in per_client.get(name, ()))
        if hosts:
            waves.append(PlannedWave(index=len(waves), name=name, hosts=hosts))
    return tuple(waves)


def _strictest(budgets: Iterable[FailureBudget]) -> FailureBudget:
    """One budget at least as strict as each given one (they differ only when clients override their track)."""
    budgets = list(budgets)
    counts = [b.max_failed for b in budgets if b.max_failed is not None]
    percents = [b.max_failed_percent for b in budgets if b.max_failed_percent is not None]
    with_percent = [b for b in budgets if b.max_failed_percent is not None] or budgets
    return FailureBudget(
        max_failed=min(counts) if counts else None,
        max_failed_percent=min(percents) if percents else None,
        min_finished=min(b.min_finished for b in with_percent),
    )
