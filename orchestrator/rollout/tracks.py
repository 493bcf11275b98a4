"""Rollout tracks as data: ``orchestrator/data/tracks.yml``, overridable by ``inventories/<client>/tracks.yml``.

A track says how a release travels: its waves (cumulative slices of each client's hosts), the soak between waves,
how long a host may take to report healthy, which gates run and the failure budget. The override file has the
same shape and is deep-merged per track: mappings merge key by key (``failure_budget``), lists (``waves``,
``gates``) and scalars replace. ``null`` in an override clears an optional budget limit. Both files are
validated strictly and every error names the file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from ..track_names import FEATURE, TRACK_NAMES
from .errors import RolloutError

DEFAULT_TRACKS = Path(__file__).resolve().parent.parent / "data" / "tracks.yml"
GATES = ("window", "training", "health", "smoke", "budget")
TRACK_KEYS = (
    "waves",
    "soak_seconds",
    "health_timeout_seconds",
    "task_timeout_seconds",
    "run_timeout_seconds",
    "gates",
    "failure_budget",
    "requires_training",
)
WAVE_KEYS = ("name", "hosts_per_client", "percent")
BUDGET_KEYS = ("max_failed", "max_failed_percent", "min_finished")
HINT = "see orchestrator/data/tracks.yml for the expected shape"


@dataclass(frozen=True)
class WaveSpec:
    """One wave of a track: the next ``hosts_per_client`` hosts of each client, or up to ``percent`` of them."""

    name: str
    hosts_per_client: int | None = None
    percent: int | None = None

    def __post_init__(self) -> None:
        if (self.hosts_per_client is None) == (self.percent is None):
            raise RolloutError(
                f"wave {self.name!r} needs exactly one of hosts_per_client and percent", hint="set one, not both"
            )


@dataclass(frozen=True)
class FailureBudget:
    """How many failed hosts a rollout tolerates, counted across the whole rollout.

    ``max_failed`` is a count; ``max_failed_percent`` a share of the hosts finished so far that applies only
    once ``min_finished`` hosts finished (a percentage of two hosts says nothing). Either may be ``None`` (no
    limit of that form), not both. Exactly at a limit the rollout continues; one more failure halts it.
    """

    max_failed: int | None
    max_failed_percent: float | None
    min_finished: int = 1

    def exceeded(self, finished: int, failed: int) -> bool:
        if finished < 0 or failed < 0 or failed > finished:
            raise ValueError(f"impossible counts: {failed} failed of {finished} finished")
        if self.max_failed is not None and failed > self.max_failed:
            return True
        if self.max_failed_percent is None or finished == 0 or finished < self.min_finished:
            return False
        # Exact arithmetic: Fraction(str(12.3)) is 123/10, so "exactly at the budget" is never off by a float bit.
        return Fraction(failed * 100, finished) > Fraction(str(self.max_failed_percent))

    def allowed(self, hosts: int) -> int:
        """How many of a client's ``hosts`` (in this rollout) may fail without halting it: the budget is a share
        of that client's own hosts, the strictest of ``max_failed`` and ``max_failed_percent`` of ``hosts``
        (rounded down, so a small client tolerates no failure unless its count says so and its share allows it).
        The executor applies this per client, with the canary rule on top (a failed canary always halts);
        ``min_finished`` only matters for :meth:`exceeded`, the count across a whole rollout."""
        if hosts < 0:
            raise ValueError(f"impossible host count {hosts}")
        limits = []
        if self.max_failed is not None:
            limits.append(self.max_failed)
        if self.max_failed_percent is not None:
            limits.append(int(Fraction(str(self.max_failed_percent)) * hosts / 100))
        return min(limits) if limits else hosts

    def to_json(self) -> dict[str, Any]:
        return {
            "max_failed": self.max_failed,
            "max_failed_percent": self.max_failed_percent,
            "min_finished": self.min_finished,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailureBudget:
        pct = data["max_failed_percent"]
        return cls(
            max_failed=None if data["max_failed"] is None else int(data["max_failed"]),
            max_failed_percent=None if pct is None else float(pct),
            min_finished=int(data["min_finished"]),
        )


@dataclass(frozen=True)
class Track:
    name: str
    waves: tuple[WaveSpec, ...]
    soak_seconds: int
    health_timeout_seconds: int
    task_timeout_seconds: int  # one Ansible task on one host (that host then fails; the wave goes on)
    run_timeout_seconds: int  # one client's agent run of a wave, all its hosts (then killed; unfinished hosts fail)
    gates: tuple[str, ...]
    failure_budget: FailureBudget
    requires_training: bool


def load_tracks(default_path: Path | None = None, override_path: Path | None = None) -> dict[str, Track]:
    """The tracks shipped with the tool, deep-merged with a client's override file.

    ``override_path`` may name a file that does not exist (most clients have none): then the defaults apply.
    """
    default_path = default_path or DEFAULT_TRACKS
    default = _read(default_path)
    override = _read(override_path) if override_path is not None and override_path.exists() else None
    return build_tracks(default, str(default_path), override, str(override_path))


def client_track(inventory_dir: Path, track_name: str) -> Track:
    """The track ``track_name`` as it applies to the client whose inventory folder is ``inventory_dir``."""
    return load_tracks(override_path=inventory_dir / "tracks.yml")[track_name]


def build_tracks(
    default: Any, default_source: str, override: Any = None, override_source: str = "override"
) -> dict[str, Track]:
    """The pure half of :func:`load_tracks`: validate parsed YAML data and merge the override into it."""
    if not isinstance(default, Mapping):
        raise RolloutError(f"{default_source}: expected a mapping of track names", hint=HINT)
    tracks = {name: _track(name, spec, default_source) for name, spec in _tracks_mapping(default, default_source)}
    missing = [n for n in TRACK_NAMES if n not in tracks]
    if missing:
        raise RolloutError(f"{default_source}: missing track {missing[0]!r}", hint=HINT)
    if override is None:
        return tracks
    if not isinstance(override, Mapping):
        raise RolloutError(f"{override_source}: expected a mapping of track names", hint=HINT)
    for name, spec in _tracks_mapping(override, override_source):
        _check_keys(spec, TRACK_KEYS, override_source, name, required=())
        if "failure_budget" in spec:
            _check_keys(spec["failure_budget"], BUDGET_KEYS, override_source, f"{name}.failure_budget", required=())
        # The defaults were valid, so anything wrong with the merged track came from the override.
        tracks[name] = _track(name, _merge(_raw(default[name]), spec), override_source)
    return tracks


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RolloutError(f"cannot read track file {path}: {exc.strerror}", hint=HINT) from exc
    except yaml.YAMLError as exc:
        raise RolloutError(f"{path} is not valid YAML: {' '.join(str(exc).split())}", hint=HINT) from exc


def _tracks_mapping(data: Mapping[Any, Any], source: str) -> list[tuple[str, Mapping[str, Any]]]:
    out = []
    for name, spec in data.items():
        if name not in TRACK_NAMES:
            raise RolloutError(f"{source}: unknown track {name!r}", hint=f"tracks are: {', '.join(TRACK_NAMES)}")
        if not isinstance(spec, Mapping):
            raise RolloutError(f"{source}: {name}: expected a mapping", hint=HINT)
        out.append((str(name), spec))
    return out


def _raw(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in spec.items()}


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_keys(data: Any, allowed: tuple[str, ...], source: str, where: str, *, required: tuple[str, ...]) -> None:
    if not isinstance(data, Mapping):
        raise RolloutError(f"{source}: {where}: expected a mapping", hint=HINT)
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise RolloutError(f"{source}: {where}.{unknown[0]}: unknown key", hint=f"allowed here: {', '.join(allowed)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise RolloutError(f"{source}: {where}.{missing[0]}: missing", hint=HINT)


def _int(value: Any, source: str, where: str, minimum: int) -> int:
    # bool is an int in Python; "true" is never a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RolloutError(f"{source}: {where}: expected a whole number, got {value!r}", hint=HINT)
    if value < minimum:
        raise RolloutError(f"{source}: {where}: must be at least {minimum}, got {value}", hint=HINT)
    return value


def _track(name: str, spec: Mapping[str, Any], source: str) -> Track:
    _check_keys(spec, TRACK_KEYS, source, name, required=TRACK_KEYS)
    requires_training = spec["requires_training"]
    if not isinstance(requires_training, bool):
        raise RolloutError(f"{source}: {name}.requires_training: expected true or false", hint=HINT)
    if requires_training != (name == FEATURE):
        raise RolloutError(
            f"{source}: {name}.requires_training: must be {str(name == FEATURE).lower()}",
            hint="feature releases always need on-site training; hotfixes never wait for it",
        )
    return Track(
        name=name,
        waves=_waves(spec["waves"], source, name),
        soak_seconds=_int(spec["soak_seconds"], source, f"{name}.soak_seconds", 0),
        health_timeout_seconds=_int(spec["health_timeout_seconds"], source, f"{name}.health_timeout_seconds", 1),
        task_timeout_seconds=_int(spec["task_timeout_seconds"], source, f"{name}.task_timeout_seconds", 1),
        run_timeout_seconds=_int(spec["run_timeout_seconds"], source, f"{name}.run_timeout_seconds", 1),
        gates=_gates(spec["gates"], source, name, requires_training),
        failure_budget=_budget(spec["failure_budget"], source, name),
        requires_training=requires_training,
    )


def _waves(data: Any, source: str, track: str) -> tuple[WaveSpec, ...]:
    if not isinstance(data, list) or not data:
        raise RolloutError(f"{source}: {track}.waves: expected a non-empty list of waves", hint=HINT)
    waves: list[WaveSpec] = []
    last_percent = 0
    for i, item in enumerate(data):
        where = f"{track}.waves[{i}]"
        _check_keys(item, WAVE_KEYS, source, where, required=("name",))
        wave_name = item["name"]
        if not isinstance(wave_name, str) or not wave_name.strip():
            raise RolloutError(f"{source}: {where}.name: expected a non-empty name", hint=HINT)
        if any(w.name == wave_name for w in waves):
            raise RolloutError(f"{source}: {where}.name: wave {wave_name!r} appears twice", hint=HINT)
        if ("hosts_per_client" in item) == ("percent" in item):
            raise RolloutError(
                f"{source}: {where}: needs exactly one of hosts_per_client and percent", hint="set one, not both"
            )
        if "percent" in item:
            percent = _int(item["percent"], source, f"{where}.percent", 1)
            if percent > 100 or percent <= last_percent:
                raise RolloutError(
                    f"{source}: {where}.percent: {percent} must be above the previous {last_percent} and at most 100",
                    hint="percentages are cumulative: e.g. 25 then 100",
                )
            last_percent = percent
            waves.append(WaveSpec(wave_name, percent=percent))
        else:
            waves.append(WaveSpec(wave_name, hosts_per_client=_int(item["hosts_per_client"], source, where, 1)))
    if waves[-1].percent != 100:
        raise RolloutError(
            f"{source}: {track}.waves[{len(waves) - 1}]: the last wave must be percent: 100",
            hint="otherwise some hosts would never get the release",
        )
    return tuple(waves)


def _gates(data: Any, source: str, track: str, requires_training: bool) -> tuple[str, ...]:
    where = f"{track}.gates"
    if not isinstance(data, list):
        raise RolloutError(f"{source}: {where}: expected a list", hint=f"gates are: {', '.join(GATES)}")
    for gate in data:
        if gate not in GATES:
            raise RolloutError(f"{source}: {where}: unknown gate {gate!r}", hint=f"gates are: {', '.join(GATES)}")
    if len(set(data)) != len(data):
        raise RolloutError(f"{source}: {where}: a gate is listed twice", hint="list each gate once")
    if ("training" in data) != requires_training:
        raise RolloutError(
            f"{source}: {where}: the training gate must be listed exactly when requires_training is true", hint=HINT
        )
    return tuple(str(g) for g in data)


def _budget(data: Any, source: str, track: str) -> FailureBudget:
    where = f"{track}.failure_budget"
    _check_keys(data, BUDGET_KEYS, source, where, required=())
    max_failed = data.get("max_failed")
    if max_failed is not None:
        max_failed = _int(max_failed, source, f"{where}.max_failed", 0)
    pct = data.get("max_failed_percent")
    if pct is not None:
        if isinstance(pct, bool) or not isinstance(pct, int | float) or not math.isfinite(pct) or not 0 <= pct <= 100:
            raise RolloutError(f"{source}: {where}.max_failed_percent: expected 0 to 100, got {pct!r}", hint=HINT)
        pct = float(pct)
    if max_failed is None and pct is None:
        raise RolloutError(
            f"{source}: {where}: set max_failed, max_failed_percent or both", hint="a rollout needs a failure budget"
        )
    if pct is not None and "min_finished" not in data:
        raise RolloutError(f"{source}: {where}.min_finished: missing (needed with max_failed_percent)", hint=HINT)
    min_finished = _int(data.get("min_finished", 1), source, f"{where}.min_finished", 0)
    return FailureBudget(max_failed=max_failed, max_failed_percent=pct, min_finished=min_finished)
