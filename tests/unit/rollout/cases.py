"""Golden cases of the rollout planner: ``golden/<case>.yml`` holds the inputs, ``golden/<case>.json`` the plan.

Shared by the test (which only reads) and ``regen`` (which rewrites the JSON files on purpose). A case file:

    now: "2026-11-23T03:00:00+00:00"          # quoted: the planning time, timezone-aware
    release: {version: 1.4.2, track: hotfix}  # + min_previous_version, requires_training
    emergency_reason: null                    # optional
    rollback: false                           # optional
    clients:
      - name: arena
        tier: professional                    # a tier of playbooks/vars/tiers.yml (24/7 tiers ignore windows)
        window: "Mon-Fri 02:00-05:00 Europe/Madrid"
        training: {signed_off: false, scheduled_for: "2026-12-03"}   # optional; absent = none recorded
        tracks: {hotfix: {soak_seconds: 30}}  # optional: the client's inventories/<client>/tracks.yml
        hosts: {arena-1: 1.4.1, arena-2: null}  # host -> version it runs (null = unknown)
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from orchestrator import window
from orchestrator.rollout.plan import ClientInput, HostInput, ReleaseInput, RolloutPlan, TrainingInput, plan
from orchestrator.rollout.tracks import DEFAULT_TRACKS, build_tracks
from orchestrator.tiers import get_tier

GOLDEN = Path(__file__).resolve().parent / "golden"
CASE_KEYS = {"now", "release", "emergency_reason", "rollback", "clients"}
CLIENT_KEYS = {"name", "tier", "window", "training", "tracks", "hosts"}


def case_names() -> list[str]:
    return sorted(p.stem for p in GOLDEN.glob("*.yml"))


def _check_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")


def _client(data: dict[str, Any], release_track: str, default_tracks: Any, case: str) -> ClientInput:
    _check_keys(data, CLIENT_KEYS, f"{case}: client {data.get('name')}")
    name = str(data["name"])
    tier = get_tier(str(data["tier"]))
    training = data.get("training")
    tracks = build_tracks(default_tracks, str(DEFAULT_TRACKS), data.get("tracks"), f"{case}: {name}.tracks")
    hosts = data["hosts"] or {}
    return ClientInput(
        name=name,
        tier_name=tier.name,
        around_the_clock=tier.around_the_clock,
        window=window.parse(str(data["window"])),
        hosts=tuple(HostInput(name, str(h), None if v is None else str(v)) for h, v in hosts.items()),
        training=None if training is None else TrainingInput(bool(training["signed_off"]), training["scheduled_for"]),
        track=tracks[release_track],
    )


def run_case(name: str) -> RolloutPlan:
    """Load ``golden/<name>.yml`` and plan it."""
    data = yaml.safe_load((GOLDEN / f"{name}.yml").read_text(encoding="utf-8"))
    _check_keys(data, CASE_KEYS, name)
    release = data["release"]
    release_input = ReleaseInput(
        version=str(release["version"]),
        track=str(release["track"]),
        min_previous_version=release.get("min_previous_version"),
        requires_training=release.get("requires_training"),
    )
    default_tracks = yaml.safe_load(DEFAULT_TRACKS.read_text(encoding="utf-8"))
    clients = [_client(c, release_input.track, default_tracks, name) for c in data["clients"]]
    return plan(
        release_input,
        clients,
        now=dt.datetime.fromisoformat(str(data["now"])),
        emergency_reason=data.get("emergency_reason"),
        rollback=bool(data.get("rollback", False)),
    )


def render(p: RolloutPlan) -> str:
    """The exact text of a golden JSON file (key order as ``to_json`` gives it)."""
    return json.dumps(p.to_json(), indent=2) + "\n"
