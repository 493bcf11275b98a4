"""Rollouts: tracks as data, version ordering and the pure planner (gates and execution build on these)."""

from __future__ import annotations

from ..versions import compare, version_key
from .errors import RolloutError
from .plan import (
    ClientInput,
    HostInput,
    PlannedWave,
    ReleaseInput,
    RolloutPlan,
    Skipped,
    TrainingInput,
    Waiting,
    plan,
)
from .tracks import FailureBudget, Track, WaveSpec, load_tracks

__all__ = [
    "ClientInput",
    "FailureBudget",
    "HostInput",
    "PlannedWave",
    "ReleaseInput",
    "RolloutError",
    "RolloutPlan",
    "Skipped",
    "Track",
    "TrainingInput",
    "Waiting",
    "WaveSpec",
    "compare",
    "load_tracks",
    "plan",
    "version_key",
]
