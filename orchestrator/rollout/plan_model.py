"""The rollout plan as data: the planner's inputs (release, clients, hosts, training) and the plan it makes
(waves, who waits, who is skipped, each client's gates), with ``to_json``/``from_json`` so the executor can
store a plan in the ledger and reload it to resume. The planner itself is :mod:`.plan`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..window import Window
from .errors import RolloutError
from .tracks import FailureBudget, Track

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
