"""The push policy as data: ``orchestrator/data/defence.yml``, one entry per tier (dwell, waves, how long a wave
waits for its hosts to confirm, the detector budget, the ban-rate bound, the opt-in to collective defence) and the
fleet-wide collective-defence thresholds. Validated strictly at load; every problem is one line naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..rollout.tracks import FailureBudget, Track, WaveSpec
from ..track_names import HOTFIX
from .errors import DefenceError

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "data" / "defence.yml"
TOP_KEYS = ("gap_intervals", "collective", "tiers")
TIER_KEYS = (
    "dwell_seconds",
    "waves",
    "confirm_timeout_seconds",
    "detect_us_per_line",
    "ban_rate",
    "collective_defence",
)
BAN_KEYS = ("factor", "floor")
COLLECTIVE_KEYS = ("min_clients", "within_seconds", "expires_seconds")
HINT = "see orchestrator/data/defence.yml for the expected shape"
CANARY = "canary"


@dataclass(frozen=True)
class BanBound:
    """Bans since the swap may not exceed ``factor`` x the host's own baseline rate x the time since + ``floor``."""

    factor: float
    floor: int

    def allowed(self, baseline_per_second: float, seconds: float) -> float:
        return self.factor * baseline_per_second * max(seconds, 0.0) + self.floor


@dataclass(frozen=True)
class TierPolicy:
    tier: str
    dwell_seconds: int
    waves: tuple[int, ...]  # cumulative percentages after the canary; the last is 100
    confirm_timeout_seconds: int
    detect_us_per_line: float
    ban_rate: BanBound
    collective_defence: bool

    def track(self) -> Track:
        """The tier's push as a rollout track, so that the rollout planner cuts the waves (canary: one host per
        client, then the cumulative percentages) and holds clients outside their window. Packs travel on the
        hotfix track's rules: no training gate, the window gate only."""
        later = (WaveSpec(f"wave-{i}", percent=p) for i, p in enumerate(self.waves, start=1))
        waves = (WaveSpec(CANARY, hosts_per_client=1), *later)
        return Track(
            name=HOTFIX,
            waves=waves,
            soak_seconds=self.dwell_seconds,
            health_timeout_seconds=self.confirm_timeout_seconds,
            task_timeout_seconds=self.confirm_timeout_seconds,
            run_timeout_seconds=self.confirm_timeout_seconds,
            gates=("window",),
            failure_budget=FailureBudget(max_failed=0, max_failed_percent=None),
            requires_training=False,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "dwell_seconds": self.dwell_seconds,
            "waves": list(self.waves),
            "confirm_timeout_seconds": self.confirm_timeout_seconds,
            "detect_us_per_line": self.detect_us_per_line,
            "ban_rate": {"factor": self.ban_rate.factor, "floor": self.ban_rate.floor},
            "collective_defence": self.collective_defence,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TierPolicy:
        return _tier(str(data["tier"]), {k: v for k, v in data.items() if k != "tier"}, "stored push plan")


@dataclass(frozen=True)
class Collective:
    min_clients: int
    within_seconds: int
    expires_seconds: int


@dataclass(frozen=True)
class Policy:
    gap_intervals: float
    collective: Collective
    tiers: Mapping[str, TierPolicy]

    def of(self, tier: str) -> TierPolicy:
        found = self.tiers.get(tier)
        if found is None:
            raise DefenceError(
                f"tier {tier!r} has no entry in the defence policy", hint=f"add it under tiers: in {DEFAULT_POLICY}"
            )
        return found


def load_policy(path: Path | None = None, tiers: tuple[str, ...] | None = None) -> Policy:
    """Read and validate the policy; ``tiers`` (default: every tier of playbooks/vars/tiers.yml) must all have an
    entry, and no other tier may."""
    path = path or DEFAULT_POLICY
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DefenceError(f"cannot read the defence policy {path}: {exc.strerror}", hint=HINT) from exc
    except yaml.YAMLError as exc:
        raise DefenceError(f"{path} is not valid YAML: {' '.join(str(exc).split())}", hint=HINT) from exc
    if tiers is None:
        from ..tiers import load_tiers

        tiers = tuple(load_tiers())
    return build_policy(data, str(path), tiers)


def build_policy(data: Any, source: str, tiers: tuple[str, ...]) -> Policy:
    """The pure half of :func:`load_policy`."""
    _keys(data, TOP_KEYS, source, "(top)", TOP_KEYS)
    raw_tiers = data["tiers"]
    _keys(raw_tiers, tuple(tiers), source, "tiers", tuple(tiers), what="tier")
    collective = data["collective"]
    _keys(collective, COLLECTIVE_KEYS, source, "collective", COLLECTIVE_KEYS)
    return Policy(
        gap_intervals=_number(data["gap_intervals"], source, "gap_intervals", 1.0),
        collective=Collective(
            min_clients=_int(collective["min_clients"], source, "collective.min_clients", 2),
            within_seconds=_int(collective["within_seconds"], source, "collective.within_seconds", 1),
            expires_seconds=_int(collective["expires_seconds"], source, "collective.expires_seconds", 1),
        ),
        tiers={name: _tier(name, raw_tiers[name], source) for name in tiers},
    )


def _tier(name: str, spec: Any, source: str) -> TierPolicy:
    where = f"tiers.{name}"
    _keys(spec, TIER_KEYS, source, where, TIER_KEYS)
    ban = spec["ban_rate"]
    _keys(ban, BAN_KEYS, source, f"{where}.ban_rate", BAN_KEYS)
    if not isinstance(spec["collective_defence"], bool):
        raise DefenceError(f"{source}: {where}.collective_defence: expected true or false", hint=HINT)
    return TierPolicy(
        tier=name,
        dwell_seconds=_int(spec["dwell_seconds"], source, f"{where}.dwell_seconds", 0),
        waves=_waves(spec["waves"], source, f"{where}.waves"),
        confirm_timeout_seconds=_int(spec["confirm_timeout_seconds"], source, f"{where}.confirm_timeout_seconds", 1),
        detect_us_per_line=_number(spec["detect_us_per_line"], source, f"{where}.detect_us_per_line", 0.001),
        ban_rate=BanBound(
            factor=_number(ban["factor"], source, f"{where}.ban_rate.factor", 1.0),
            floor=_int(ban["floor"], source, f"{where}.ban_rate.floor", 0),
        ),
        collective_defence=spec["collective_defence"],
    )


def _waves(data: Any, source: str, where: str) -> tuple[int, ...]:
    if not isinstance(data, list) or not data:
        raise DefenceError(f"{source}: {where}: expected a list of percentages ending with 100", hint=HINT)
    last = 0
    for i, item in enumerate(data):
        value = _int(item, source, f"{where}[{i}]", 1)
        if value <= last or value > 100:
            raise DefenceError(
                f"{source}: {where}[{i}]: {value} must be above the previous {last} and at most 100",
                hint="percentages are cumulative: e.g. 25 then 100",
            )
        last = value
    if last != 100:
        raise DefenceError(f"{source}: {where}: the last wave must be 100", hint="otherwise some hosts never get it")
    return tuple(int(v) for v in data)


def _keys(
    data: Any, allowed: tuple[str, ...], source: str, where: str, required: tuple[str, ...], *, what: str = "key"
) -> None:
    if not isinstance(data, Mapping):
        raise DefenceError(f"{source}: {where}: expected a mapping", hint=HINT)
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise DefenceError(f"{source}: {where}.{unknown[0]}: unknown {what}", hint=f"allowed: {', '.join(allowed)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise DefenceError(f"{source}: {where}.{missing[0]}: missing", hint=HINT)


def _int(value: Any, source: str, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefenceError(f"{source}: {where}: expected a whole number, got {value!r}", hint=HINT)
    if value < minimum:
        raise DefenceError(f"{source}: {where}: must be at least {minimum}, got {value}", hint=HINT)
    return value


def _number(value: Any, source: str, where: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DefenceError(f"{source}: {where}: expected a number, got {value!r}", hint=HINT)
    if value < minimum:
        raise DefenceError(f"{source}: {where}: must be at least {minimum:g}, got {value:g}", hint=HINT)
    return float(value)
