"""The rollout planner: a pure function from a release and the clients' state to a plan of waves.

No I/O, no clock, no ledger: the orchestrator builds the inputs (from inventories, the track files and the
ledger) and passes ``now``. The plan is data; the executor stores ``to_json()`` in the ledger and reloads it with
``from_json()`` to resume.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..track_names import FEATURE, HOTFIX, TRACK_NAMES
from ..versions import compare, is_valid, version_key
from ..window import Window
from .errors import RolloutError
from .tracks import FailureBudget, Track, WaveSpec

SCHEMA = 1


@dataclass(frozen=True)
class ReleaseInput:
    version: str
    track: str  # "hotfix" or "feature"
    min_previous_version: str | None = None
    requires_training: str | None = None  # a training module name; a feature release needs training anyway

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "track": self.track,
            "min_previous_version": self.min_previous_version,
            "requires_training": self.requires_training,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReleaseInput:
        return cls(
            version=_str(data["version"]),
            track=_str(data["track"]),
            min_previous_version=_opt_str(data["min_previous_version"]),
            requires_training=_opt_str(data["requires_training"]),
        )


@dataclass(frozen=True)
class HostInput:
    client: str
    host: str
    current_version: str | None  # None: no agent installed, or the ledger does not know

    def to_json(self) -> dict[str, Any]:
        return {"client": self.client, "host": self.host, "current_version": self.current_version}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostInput:
        return cls(
            client=_str(data["client"]), host=_str(data["host"]), current_version=_opt_str(data["current_version"])
        )


@dataclass(frozen=True)
class TrainingInput:
    """The client's on-site training for this release (or its module)."""

    signed_off: bool
    scheduled_for: str | None = None  # ISO date of the next session, if one is booked


@dataclass(frozen=True)
class ClientInput:
    name: str
    tier_name: str
    around_the_clock: bool
    window: Window
    hosts: tuple[HostInput, ...]
    training: TrainingInput | None  # None: no training recorded for this release
    track: Track  # the client's effective track for the release's track name, overrides applied


@dataclass(frozen=True)
class PlannedWave:
    index: int  # 0-based, contiguous after empty waves are dropped; wave 0 is the canary
    name: str
    hosts: tuple[HostInput, ...]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "hosts": [h.to_json() for h in self.hosts]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlannedWave:
        return cls(
            index=_int(data["index"]),
            name=_str(data["name"]),
            hosts=tuple(HostInput.from_json(h) for h in _list(data["hosts"])),
        )


@dataclass(frozen=True)
class Waiting:
    client: str
    reason: str  # "training" or "window"
    detail: str
    until: str | None  # window: when it next opens (ISO); training: the scheduled session, if any

    def to_json(self) -> dict[str, Any]:
        return {"client": self.client, "reason": self.reason, "detail": self.detail, "until": self.until}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Waiting:
        return cls(
            client=_str(data["client"]),
            reason=_str(data["reason"]),
            detail=_str(data["detail"]),
            until=_opt_str(data["until"]),
        )


@dataclass(frozen=True)
class Skipped:
    client: str
    host: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"client": self.client, "host": self.host, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Skipped:
        return cls(client=_str(data["client"]), host=_str(data["host"]), reason=_str(data["reason"]))


@dataclass(frozen=True)
class ClientGates:
    """One client's own gate settings, from its effective track (its tracks.yml honoured): each client's wave
    runs these, not a merge of every client's."""

    gates: tuple[str, ...]
    health_timeout_seconds: int
    failure_budget: FailureBudget

    def to_json(self) -> dict[str, Any]:
        return {
            "gates": list(self.gates),
            "health_timeout_seconds": self.health_timeout_seconds,
            "failure_budget": self.failure_budget.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClientGates:
        return cls(
            gates=tuple(_str(g) for g in _list(data["gates"])),
            health_timeout_seconds=_int(data["health_timeout_seconds"]),
            failure_budget=FailureBudget.from_json(data["failure_budget"]),
        )


@dataclass(frozen=True)
class RolloutPlan:
    release: ReleaseInput
    track_name: str
    waves: tuple[PlannedWave, ...]
    gates: tuple[str, ...]
    soak_seconds: int
    health_timeout_seconds: int
    failure_budget: FailureBudget
    waiting: tuple[Waiting, ...]
    skipped: tuple[Skipped, ...]
    emergency_reason: str | None
    rollback: bool
    planned_at: dt.datetime
    client_gates: Mapping[str, ClientGates] = field(default_factory=dict)  # every client given, by name

    def gates_of(self, client: str) -> ClientGates:
        """The client's own gates (a plan stored before per-client gates existed: the plan-wide ones)."""
        found = self.client_gates.get(client)
        if found is not None:
            return found
        return ClientGates(self.gates, self.health_timeout_seconds, self.failure_budget)

    @property
    def hosts(self) -> tuple[HostInput, ...]:
        """Every host the plan changes, in execution order."""
        return tuple(h for wave in self.waves for h in wave.hosts)

    @property
    def is_empty(self) -> bool:
        return not self.waves

    @property
    def canary(self) -> PlannedWave | None:
        return self.waves[0] if self.waves else None

    @property
    def clients(self) -> tuple[str, ...]:
        """The clients with hosts in the plan, sorted."""
        return tuple(sorted({h.client for h in self.hosts}))

    def to_json(self) -> dict[str, Any]:
        """JSON-native, in a stable key order, times in ISO 8601."""
        return {
            "schema": SCHEMA,
            "release": self.release.to_json(),
            "track": self.track_name,
            "rollback": self.rollback,
            "emergency_reason": self.emergency_reason,
            "planned_at": self.planned_at.isoformat(),
            "gates": list(self.gates),
            "soak_seconds": self.soak_seconds,
            "health_timeout_seconds": self.health_timeout_seconds,
            "failure_budget": self.failure_budget.to_json(),
            "waves": [w.to_json() for w in self.waves],
            "waiting": [w.to_json() for w in self.waiting],
            "skipped": [s.to_json() for s in self.skipped],
            "client_gates": {c: g.to_json() for c, g in sorted(self.client_gates.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutPlan:
        """The plan ``to_json`` wrote (as stored in the ledger); raises :class:`RolloutError` if it is not one."""
        try:
            if data["schema"] != SCHEMA:
                raise ValueError(f"schema {data['schema']!r}, this sentryctl reads {SCHEMA}")
            planned_at = dt.datetime.fromisoformat(_str(data["planned_at"]))
            if planned_at.tzinfo is None:
                raise ValueError("planned_at has no time zone")
            return cls(
                release=ReleaseInput.from_json(data["release"]),
                track_name=_str(data["track"]),
                waves=tuple(PlannedWave.from_json(w) for w in _list(data["waves"])),
                gates=tuple(_str(g) for g in _list(data["gates"])),
                soak_seconds=_int(data["soak_seconds"]),
                health_timeout_seconds=_int(data["health_timeout_seconds"]),
                failure_budget=FailureBudget.from_json(data["failure_budget"]),
                waiting=tuple(Waiting.from_json(w) for w in _list(data["waiting"])),
                skipped=tuple(Skipped.from_json(s) for s in _list(data["skipped"])),
                emergency_reason=_opt_str(data["emergency_reason"]),
                rollback=_bool(data["rollback"]),
                planned_at=planned_at,
                client_gates={
                    _str(c): ClientGates.from_json(g) for c, g in dict(data.get("client_gates") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RolloutError(
                f"stored rollout plan is malformed: {exc!r}", hint="the ledger entry was not written by plan.to_json()"
            ) from exc


def plan(
    release: ReleaseInput,
    clients: Sequence[ClientInput],
    *,
    now: dt.datetime,
    emergency_reason: str | None = None,
    rollback: bool = False,
) -> RolloutPlan:
    """Plan ``release`` over ``clients`` as of ``now`` (timezone-aware). Pure: same inputs, same plan."""
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
            reason = skip_reason(release, host, rollback=rollback)
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


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return value
