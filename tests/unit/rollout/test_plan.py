"""The planner beyond the golden cases: input errors, purity, helpers and the ledger round trip."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from orchestrator import window
from orchestrator.errors import VersionError
from orchestrator.rollout import (
    ClientInput,
    HostInput,
    ReleaseInput,
    RolloutError,
    RolloutPlan,
    TrainingInput,
    WaveSpec,
    load_tracks,
    plan,
)

NOW = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)  # a Monday
TRACKS = load_tracks()
HOTFIX = ReleaseInput("1.4.2", "hotfix")
FEATURE = ReleaseInput("2.0.0", "feature", requires_training="rules-v2")


def client(
    name: str,
    count: int,
    *,
    version: str | None = "1.4.1",
    track: str = "hotfix",
    win: str = "always",
    around_the_clock: bool = False,
    training: TrainingInput | None = None,
    **changes: Any,
) -> ClientInput:
    return ClientInput(
        name=name,
        tier_name="enterprise" if around_the_clock else "professional",
        around_the_clock=around_the_clock,
        window=window.parse(win),
        hosts=tuple(HostInput(name, f"{name}-{i:02d}", version) for i in range(1, count + 1)),
        training=training,
        track=dataclasses.replace(TRACKS[track], **changes),
    )


def names(p: RolloutPlan) -> list[tuple[str, list[str]]]:
    return [(w.name, [h.host for h in w.hosts]) for w in p.waves]


def test_plan_is_deterministic_whatever_the_input_order() -> None:
    a, b = client("arena", 3), client("blitz", 8)
    shuffled = dataclasses.replace(b, hosts=tuple(reversed(b.hosts)))
    assert plan(HOTFIX, [a, b], now=NOW) == plan(HOTFIX, [shuffled, a], now=NOW)


def test_percent_waves_are_cumulative_and_rounded_up() -> None:
    p = plan(HOTFIX, [client("arena", 8)], now=NOW)
    # 8 hosts: canary 1, early up to ceil(25% of 8) = 2 in total, rest.
    assert [len(w.hosts) for w in p.waves] == [1, 1, 6]
    assert [w.index for w in p.waves] == [0, 1, 2]
    assert p.canary is p.waves[0]


def test_canary_has_one_host_per_client() -> None:
    p = plan(HOTFIX, [client("arena", 4), client("blitz", 9), client("citadel", 1)], now=NOW)
    assert p.canary is not None
    assert [h.client for h in p.canary.hosts] == ["arena", "blitz", "citadel"]
    assert p.clients == ("arena", "blitz", "citadel")
    assert len(p.hosts) == 14
    assert len(set(p.hosts)) == 14


def test_every_eligible_host_lands_in_exactly_one_wave() -> None:
    waves = (WaveSpec("one", hosts_per_client=1), WaveSpec("third", percent=33), WaveSpec("all", percent=100))
    for count in range(1, 40):
        p = plan(HOTFIX, [client("arena", count, waves=waves)], now=NOW)
        assert sorted(h.host for h in p.hosts) == [f"arena-{i:02d}" for i in range(1, count + 1)]
        assert all(w.hosts for w in p.waves)


def test_hosts_per_client_after_a_percent_wave_takes_the_next_n() -> None:
    waves = (WaveSpec("half", percent=50), WaveSpec("two-more", hosts_per_client=2), WaveSpec("rest", percent=100))
    p = plan(HOTFIX, [client("arena", 10, waves=waves)], now=NOW)
    assert [len(w.hosts) for w in p.waves] == [5, 2, 3]


def test_a_track_that_leaves_hosts_out_is_refused() -> None:
    waves = (WaveSpec("canary", hosts_per_client=1), WaveSpec("most", percent=90))
    with pytest.raises(RolloutError, match="leaves 2 of 20 hosts out"):
        plan(HOTFIX, [client("arena", 20, waves=waves)], now=NOW)


def test_clients_ordering_shared_waves_differently_are_refused() -> None:
    swapped = (
        WaveSpec("early", hosts_per_client=1),
        WaveSpec("canary", hosts_per_client=1),
        WaveSpec("rest", percent=100),
    )
    with pytest.raises(RolloutError, match="orders wave 'canary' differently"):
        plan(HOTFIX, [client("arena", 3), client("blitz", 3, waves=swapped)], now=NOW)


def test_waiting_clients_do_not_shape_the_plan_settings() -> None:
    closed = client("arena", 2, win="Sat 02:00-03:00 UTC", soak_seconds=600)
    p = plan(HOTFIX, [closed, client("blitz", 2)], now=NOW)
    assert [w.client for w in p.waiting] == ["arena"]
    assert p.soak_seconds == TRACKS["hotfix"].soak_seconds


def test_plan_settings_are_the_strictest_of_the_participating_clients() -> None:
    budget = dataclasses.replace(TRACKS["hotfix"].failure_budget, max_failed=0, min_finished=3)
    a = client("arena", 2, soak_seconds=90, failure_budget=budget)
    b = client("blitz", 2, health_timeout_seconds=300, gates=("health", "budget"))
    p = plan(HOTFIX, [a, b], now=NOW)
    assert (p.soak_seconds, p.health_timeout_seconds) == (90, 300)
    assert p.failure_budget.max_failed == 0
    assert p.failure_budget.min_finished == 3
    assert p.gates == ("window", "health", "smoke", "budget")


def test_a_track_without_the_window_gate_is_not_deferred() -> None:
    closed = "Sat 02:00-03:00 UTC"
    assert plan(HOTFIX, [client("arena", 1, win=closed)], now=NOW).is_empty
    p = plan(HOTFIX, [client("arena", 1, win=closed, gates=("health", "smoke", "budget"))], now=NOW)
    assert not p.is_empty
    assert not p.waiting


def test_window_next_open_is_given_in_the_zone_of_now() -> None:
    madrid_now = NOW.astimezone(dt.timezone(dt.timedelta(hours=1)))
    p = plan(HOTFIX, [client("arena", 1, win="Sat 02:00-03:00 UTC")], now=madrid_now)
    assert p.waiting[0].until == "2026-11-28T03:00:00+01:00"


def test_training_signed_off_still_respects_the_window() -> None:
    signed = TrainingInput(signed_off=True)
    p = plan(FEATURE, [client("arena", 1, track="feature", win="Sat 02:00-03:00 UTC", training=signed)], now=NOW)
    assert [(w.reason, w.until) for w in p.waiting] == [("window", "2026-11-28T02:00:00+00:00")]


def test_emergency_does_not_bypass_training() -> None:
    p = plan(FEATURE, [client("arena", 1, track="feature")], now=NOW, emergency_reason="outage")
    assert p.is_empty
    assert p.waiting[0].reason == "training"
    assert p.emergency_reason == "outage"


def test_hotfixes_never_wait_for_training() -> None:
    p = plan(
        HOTFIX, [client("arena", 2, training=TrainingInput(signed_off=False, scheduled_for="2027-01-01"))], now=NOW
    )
    assert not p.waiting
    assert len(p.hosts) == 2


def test_unreadable_current_version_is_skipped_not_guessed() -> None:
    c = client("arena", 1)
    c = dataclasses.replace(c, hosts=(*c.hosts, HostInput("arena", "arena-99", "banana")))
    p = plan(HOTFIX, [c], now=NOW)
    assert [(s.host, s.reason) for s in p.skipped] == [("arena-99", "runs an unreadable version 'banana'")]


def test_rollback_still_skips_hosts_already_on_the_version() -> None:
    p = plan(ReleaseInput("1.4.1", "hotfix"), [client("arena", 2)], now=NOW, rollback=True)
    assert p.is_empty
    assert p.rollback


@pytest.mark.parametrize(
    ("release", "clients", "kwargs", "message"),
    [
        (HOTFIX, [client("arena", 1)], {"now": NOW.replace(tzinfo=None)}, "no time zone"),
        (ReleaseInput("1.4", "hotfix"), [client("arena", 1)], {}, "unreadable release version '1.4'"),
        (ReleaseInput("1.4.2", "hotfix", "x"), [client("arena", 1)], {}, "unreadable release version 'x'"),
        (ReleaseInput("1.4.2", "nightly"), [client("arena", 1)], {}, "unknown track 'nightly'"),
        (ReleaseInput("1.4.2", "hotfix", requires_training="m"), [client("arena", 1)], {}, "names training 'm'"),
        (HOTFIX, [], {}, "no clients given"),
        (HOTFIX, [client("arena", 1), client("arena", 2)], {}, "client arena is given twice"),
        (HOTFIX, [client("arena", 1, track="feature")], {}, "was given track 'feature' for a hotfix release"),
        (HOTFIX, [client("arena", 1)], {"emergency_reason": "  "}, "an emergency needs a reason"),
    ],
)
def test_bad_inputs(release: ReleaseInput, clients: list[ClientInput], kwargs: dict[str, Any], message: str) -> None:
    kwargs = {"now": NOW, **kwargs}
    with pytest.raises((RolloutError, VersionError), match=message) as info:
        plan(release, clients, **kwargs)
    assert info.value.hint


def test_hosts_must_belong_to_their_client_once() -> None:
    c = client("arena", 1)
    for extra in (HostInput("blitz", "blitz-01", None), HostInput("arena", "arena-01", None)):
        with pytest.raises(RolloutError, match="listed twice or under client arena"):
            plan(HOTFIX, [dataclasses.replace(c, hosts=(*c.hosts, extra))], now=NOW)


def test_to_json_is_json_native_and_round_trips() -> None:
    p = plan(
        ReleaseInput("1.5.0", "hotfix", min_previous_version="1.4.0"),
        [client("arena", 5), client("blitz", 2, win="Sat 02:00-03:00 UTC"), client("citadel", 1, version=None)],
        now=NOW,
    )
    data = p.to_json()
    assert json.loads(json.dumps(data)) == data
    assert list(data) == [
        "schema",
        "release",
        "track",
        "rollback",
        "emergency_reason",
        "planned_at",
        "gates",
        "soak_seconds",
        "health_timeout_seconds",
        "failure_budget",
        "waves",
        "waiting",
        "skipped",
        "client_gates",
    ]
    assert RolloutPlan.from_json(json.loads(json.dumps(data))) == p


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("waves"),
        lambda d: d.update(schema=99),
        lambda d: d.update(planned_at="yesterday"),
        lambda d: d.update(planned_at="2026-11-23T03:00:00"),
        lambda d: d.update(rollback="no"),
        lambda d: d["waves"][0].update(index="0"),
        lambda d: d["waves"][0]["hosts"][0].pop("host"),
        lambda d: d.update(skipped={}),
    ],
)
def test_from_json_rejects_what_to_json_did_not_write(damage: Any) -> None:
    data = plan(HOTFIX, [client("arena", 2)], now=NOW).to_json()
    damage(data)
    with pytest.raises(RolloutError, match="stored rollout plan is malformed") as info:
        RolloutPlan.from_json(data)
    assert "\n" not in str(info.value)


def test_empty_plan_helpers() -> None:
    p = plan(HOTFIX, [client("arena", 3, version="1.4.2")], now=NOW)
    assert p.is_empty
    assert p.canary is None
    assert p.hosts == ()
    assert p.clients == ()
    assert len(p.skipped) == 3
