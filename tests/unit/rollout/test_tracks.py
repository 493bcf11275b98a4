"""Track files: the shipped tracks, per-client overrides, and strict validation with one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.rollout import FailureBudget, RolloutError, WaveSpec, load_tracks
from orchestrator.rollout.tracks import DEFAULT_TRACKS, build_tracks, client_track


def shipped() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_TRACKS.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_shipped_tracks() -> None:
    tracks = load_tracks()
    assert set(tracks) == {"hotfix", "feature"}
    hotfix, feature = tracks["hotfix"], tracks["feature"]
    assert hotfix.waves == (
        WaveSpec("canary", hosts_per_client=1),
        WaveSpec("early", percent=25),
        WaveSpec("rest", percent=100),
    )
    assert hotfix.gates == ("window", "health", "smoke", "budget")
    assert not hotfix.requires_training
    assert feature.requires_training
    assert "training" in feature.gates
    assert feature.soak_seconds >= hotfix.soak_seconds


def test_every_track_bounds_its_ansible_runs(tmp_path: Path) -> None:
    for track in load_tracks().values():
        assert 0 < track.task_timeout_seconds < track.run_timeout_seconds
    write(tmp_path / "tracks.yml", {"hotfix": {"task_timeout_seconds": 7, "run_timeout_seconds": 40}})
    hotfix = client_track(tmp_path, "hotfix")
    assert (hotfix.task_timeout_seconds, hotfix.run_timeout_seconds) == (7, 40)
    assert client_track(tmp_path / "none", "feature") == load_tracks()["feature"]  # no override file: defaults


def test_override_is_deep_merged_per_track(tmp_path: Path) -> None:
    override = write(
        tmp_path / "tracks.yml",
        {
            "hotfix": {
                "soak_seconds": 5,
                "failure_budget": {"max_failed_percent": None},
                "waves": [{"name": "canary", "hosts_per_client": 2}, {"name": "rest", "percent": 100}],
            }
        },
    )
    tracks = load_tracks(override_path=override)
    hotfix, default = tracks["hotfix"], load_tracks()["hotfix"]
    assert hotfix.soak_seconds == 5
    assert hotfix.health_timeout_seconds == default.health_timeout_seconds  # untouched keys stay
    assert hotfix.waves == (WaveSpec("canary", hosts_per_client=2), WaveSpec("rest", percent=100))  # lists replace
    # failure_budget merges key by key; null clears the percentage, the count stays.
    assert hotfix.failure_budget == FailureBudget(
        max_failed=default.failure_budget.max_failed,
        max_failed_percent=None,
        min_finished=default.failure_budget.min_finished,
    )
    assert tracks["feature"] == load_tracks()["feature"]  # tracks not named keep the defaults


def test_missing_override_file_means_defaults(tmp_path: Path) -> None:
    assert load_tracks(override_path=tmp_path / "tracks.yml") == load_tracks()


def test_empty_override_file_means_defaults(tmp_path: Path) -> None:
    assert load_tracks(override_path=write(tmp_path / "tracks.yml", "")) == load_tracks()


def test_default_path_can_be_given(tmp_path: Path) -> None:
    data = shipped()
    data["hotfix"]["soak_seconds"] = 0
    assert load_tracks(default_path=write(tmp_path / "t.yml", data))["hotfix"].soak_seconds == 0


def _mutate_default(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(shipped())
    change(data)
    return data


# Each case breaks the shipped file in one way; the error must name the key (and, below, the file).
DEFAULT_ERRORS = [
    (lambda d: d.update(canary={}), "unknown track 'canary'"),
    (lambda d: d.pop("feature"), "missing track 'feature'"),
    (lambda d: d["hotfix"].update(soak=3), "hotfix.soak: unknown key"),
    (lambda d: d["hotfix"].pop("gates"), "hotfix.gates: missing"),
    (lambda d: d["hotfix"]["waves"][0].update(percent=10), "hotfix.waves[0]: needs exactly one of"),
    (lambda d: d["hotfix"]["waves"][0].pop("hosts_per_client"), "hotfix.waves[0]: needs exactly one of"),
    (lambda d: d["hotfix"]["waves"][0].update(size=1), "hotfix.waves[0].size: unknown key"),
    (
        lambda d: d["hotfix"]["waves"][1].update(percent=100),
        "hotfix.waves[2].percent: 100 must be above the previous 100",
    ),
    (lambda d: d["hotfix"]["waves"][2].update(percent=90), "hotfix.waves[2]: the last wave must be percent: 100"),
    (
        lambda d: d["hotfix"]["waves"][2].update(percent=120),
        "hotfix.waves[2].percent: 120 must be above the previous 25 and at most 100",
    ),
    (lambda d: d["hotfix"]["waves"][1].update(percent=0), "hotfix.waves[1].percent: must be at least 1"),
    (lambda d: d["hotfix"]["waves"][1].update(percent=12.5), "hotfix.waves[1].percent: expected a whole number"),
    (lambda d: d["hotfix"]["waves"][1].update(name="canary"), "hotfix.waves[1].name: wave 'canary' appears twice"),
    (lambda d: d["hotfix"]["waves"][0].update(hosts_per_client=0), "hotfix.waves[0]: must be at least 1"),
    (lambda d: d["hotfix"].update(waves=[]), "hotfix.waves: expected a non-empty list"),
    (lambda d: d["hotfix"].update(soak_seconds=-1), "hotfix.soak_seconds: must be at least 0"),
    (lambda d: d["hotfix"].update(soak_seconds=True), "hotfix.soak_seconds: expected a whole number"),
    (lambda d: d["hotfix"].update(health_timeout_seconds=0), "hotfix.health_timeout_seconds: must be at least 1"),
    (lambda d: d["hotfix"].update(task_timeout_seconds=0), "hotfix.task_timeout_seconds: must be at least 1"),
    (lambda d: d["feature"].pop("run_timeout_seconds"), "feature.run_timeout_seconds: missing"),
    (lambda d: d["hotfix"]["failure_budget"].update(max_failed=-1), "hotfix.failure_budget.max_failed: must be"),
    (lambda d: d["hotfix"]["failure_budget"].update(max_failed_percent=-5), "max_failed_percent: expected 0 to 100"),
    (lambda d: d["hotfix"]["failure_budget"].update(max_failed_percent=101), "max_failed_percent: expected 0 to 100"),
    (lambda d: d["hotfix"]["failure_budget"].update(min_finished=-2), "failure_budget.min_finished: must be"),
    (lambda d: d["hotfix"]["failure_budget"].update(max=1), "hotfix.failure_budget.max: unknown key"),
    (
        lambda d: d["hotfix"]["failure_budget"].update(max_failed=None, max_failed_percent=None),
        "hotfix.failure_budget: set max_failed, max_failed_percent or both",
    ),
    (lambda d: d["hotfix"]["failure_budget"].pop("min_finished"), "hotfix.failure_budget.min_finished: missing"),
    (lambda d: d["hotfix"].update(gates=["window", "canary"]), "hotfix.gates: unknown gate 'canary'"),
    (lambda d: d["hotfix"].update(gates=["health", "health"]), "hotfix.gates: a gate is listed twice"),
    (lambda d: d["hotfix"].update(gates=["window", "training"]), "hotfix.gates: the training gate must be listed"),
    (lambda d: d["feature"].update(gates=["window", "health"]), "feature.gates: the training gate must be listed"),
    (lambda d: d["hotfix"].update(requires_training=True), "hotfix.requires_training: must be false"),
    (lambda d: d["feature"].update(requires_training=False), "feature.requires_training: must be true"),
    (lambda d: d["feature"].update(requires_training="yes"), "feature.requires_training: expected true or false"),
]


@pytest.mark.parametrize(("change", "message"), DEFAULT_ERRORS)
def test_invalid_default_file(tmp_path: Path, change: Any, message: str) -> None:
    path = write(tmp_path / "tracks.yml", _mutate_default(change))
    with pytest.raises(RolloutError) as info:
        load_tracks(default_path=path)
    text = str(info.value)
    assert message in text
    assert str(path) in info.value.message
    assert info.value.hint
    assert "\n" not in text


OVERRIDE_ERRORS = [
    ({"canary": {}}, "unknown track 'canary'"),
    ({"hotfix": {"soak": 1}}, "hotfix.soak: unknown key"),
    ({"hotfix": {"failure_budget": {"maximum": 1}}}, "hotfix.failure_budget.maximum: unknown key"),
    ({"hotfix": {"waves": [{"name": "canary", "hosts_per_client": 2}]}}, "the last wave must be percent: 100"),
    (
        {
            "hotfix": {
                "waves": [{"name": "a", "percent": 50}, {"name": "b", "percent": 40}, {"name": "c", "percent": 100}]
            }
        },
        "hotfix.waves[1].percent: 40 must be above the previous 50",
    ),
    ({"hotfix": {"soak_seconds": -5}}, "hotfix.soak_seconds: must be at least 0"),
    ({"hotfix": {"gates": ["window", "health", "smoke", "budget", "prayer"]}}, "unknown gate 'prayer'"),
    ({"hotfix": {"requires_training": True}}, "hotfix.requires_training: must be false"),
    ({"hotfix": {"failure_budget": {"max_failed": None, "max_failed_percent": None}}}, "set max_failed"),
    ({"hotfix": None}, "hotfix: expected a mapping"),
    (["hotfix"], "expected a mapping of track names"),
]


@pytest.mark.parametrize(("override", "message"), OVERRIDE_ERRORS)
def test_invalid_override_names_the_override_file(tmp_path: Path, override: Any, message: str) -> None:
    path = write(tmp_path / "inventories-arena-tracks.yml", override)
    with pytest.raises(RolloutError) as info:
        load_tracks(override_path=path)
    assert message in str(info.value)
    assert info.value.message.startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tracks.yml", "hotfix: [unclosed\n  soak: 1\n")
    with pytest.raises(RolloutError, match="is not valid YAML") as info:
        load_tracks(override_path=path)
    assert "\n" not in str(info.value)


def test_missing_default_file(tmp_path: Path) -> None:
    with pytest.raises(RolloutError, match="cannot read track file"):
        load_tracks(default_path=tmp_path / "nope.yml")


def test_build_tracks_is_pure() -> None:
    data = shipped()
    before = copy.deepcopy(data)
    override = {"hotfix": {"failure_budget": {"max_failed": 5}}}
    tracks = build_tracks(data, "default", override, "override")
    assert tracks["hotfix"].failure_budget.max_failed == 5
    assert data == before  # the inputs are not modified
    assert override == {"hotfix": {"failure_budget": {"max_failed": 5}}}


def test_wave_spec_needs_exactly_one_size() -> None:
    with pytest.raises(RolloutError, match="exactly one"):
        WaveSpec("w")
    with pytest.raises(RolloutError, match="exactly one"):
        WaveSpec("w", hosts_per_client=1, percent=50)
