"""The pure push gates on crafted heartbeat records, each made to fail, and the policy file's validation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from orchestrator.defence import gates
from orchestrator.defence.errors import DefenceError
from orchestrator.defence.gates import HostWatch
from orchestrator.defence.policy import build_policy, load_policy
from orchestrator.ledger.defence_signals import PushBeat

T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
DIGEST = "d" * 64
POLICY = load_policy().of("professional")  # budget 200 us/line, bans 10x baseline + 20


def beat(seconds: float, **kw: Any) -> PushBeat:
    fields: dict[str, Any] = {
        "event": "interval", "status": "ok", "pack_version": "1.0.0", "pack_digest": DIGEST, "pack_status": "active",
        "refused_digest": None, "pack_error": None, "detect_us_per_line": 10.0,
    }  # fmt: skip
    fields.update(kw)
    return PushBeat("acme", "a1", T0 + dt.timedelta(seconds=seconds), **fields)


def watch(*beats: PushBeat, bans: int = 0, baseline: int = 0) -> HostWatch:
    swapped = next((b.received_at for b in beats if b.pack_digest == DIGEST and b.received_at >= T0), None)
    return HostWatch("acme", "a1", T0, tuple(beats), 30.0, bans, baseline, swapped)


def judge(w: HostWatch, at: float = 40) -> str | None:
    failure = gates.judge(w, DIGEST, POLICY, gap_intervals=2.5, now=T0 + dt.timedelta(seconds=at))
    return None if failure is None else f"{failure.gate}: {failure.why}"


def test_a_healthy_host_on_the_pack_passes_and_is_confirmed() -> None:
    w = watch(beat(-20, pack_digest=None, pack_status="none"), beat(5), beat(35))
    assert judge(w) is None and gates.confirmed(w, DIGEST)
    assert gates.first_on_pack(w, DIGEST) == T0 + dt.timedelta(seconds=5)


def test_not_confirmed_until_a_heartbeat_since_the_assignment_reports_the_digest() -> None:
    assert not gates.confirmed(watch(beat(-5)), DIGEST)  # before the assignment: not evidence of the swap
    assert not gates.confirmed(watch(beat(5, pack_status="reverted")), DIGEST)


@pytest.mark.parametrize(
    ("beats", "expected"),
    [
        ((beat(5, pack_status="refused", pack_digest=None, refused_digest=DIGEST, pack_error="bad sig"),),
         "refused: the agent refused the pack (bad sig)"),
        ((beat(5), beat(10, pack_status="reverted", pack_digest=None, refused_digest=DIGEST),),
         "refused: the agent reverted"),
        ((beat(5), beat(10, event="stop")), "heartbeat: the agent stopped"),
        ((beat(5, status="degraded"),), "health: the agent reports status 'degraded'"),
        ((beat(5, detect_us_per_line=250.0),), "detector: 250 us per log line, budget 200"),
    ],
)  # fmt: skip
def test_each_gate_fails_on_its_own_record(beats: tuple[PushBeat, ...], expected: str) -> None:
    assert (judge(watch(*beats), at=12) or "").startswith(expected)


def test_a_refusal_of_another_pack_is_not_this_pack_failing() -> None:
    other = beat(5, pack_status="refused", pack_digest=None, refused_digest="e" * 64)
    assert judge(watch(other), at=12) is None


def test_a_heartbeat_gap_over_two_and_a_half_intervals_fails() -> None:
    assert judge(watch(beat(5), beat(30)), at=100) is None  # 70 s since the last: under 75
    assert (judge(watch(beat(5), beat(30)), at=106) or "").startswith("heartbeat: no heartbeat for 76s")
    assert (judge(watch(beat(5), beat(85), beat(90)), at=95) or "").startswith("heartbeat: heartbeats stopped for 80s")
    # Silent since before the push: measured from its last heartbeat, not from the assignment.
    assert (judge(watch(beat(-60, pack_digest=None)), at=20) or "").startswith("heartbeat: no heartbeat for 80s")


def test_ban_rate_is_bounded_by_the_hosts_own_baseline_plus_a_floor() -> None:
    ok = watch(beat(0), bans=20)  # a quiet host (no baseline): up to the floor
    assert judge(ok, at=40) is None
    assert (judge(watch(beat(0), bans=21), at=40) or "").startswith("ban_rate: 21 bans in 40s")
    busy = 86_400  # one ban a second for a day: 10x that for 40 s is 400, plus 20
    assert judge(watch(beat(0), bans=420, baseline=busy), at=40) is None
    assert judge(watch(beat(0), bans=421, baseline=busy), at=40) is not None


POLICY_OK: dict[str, Any] = {
    "gap_intervals": 2.5,
    "collective": {"min_clients": 3, "within_seconds": 3600, "expires_seconds": 86400},
    "tiers": {
        "essentials": {"dwell_seconds": 600, "waves": [50, 100], "confirm_timeout_seconds": 180,
                       "detect_us_per_line": 200, "ban_rate": {"factor": 10, "floor": 20}, "collective_defence": False},
    },
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["tiers"]["essentials"].update(waves=[50, 90]), r"essentials\.waves: the last wave must be 100"),
        (lambda d: d["tiers"]["essentials"].update(waves=[60, 50, 100]), r"waves\[1\]: 50 must be above the prev"),
        (lambda d: d["tiers"]["essentials"].update(dwell_seconds="10m"), r"dwell_seconds: expected a whole number"),
        (lambda d: d["tiers"]["essentials"].update(collective_defence="yes"), r"collective_defence: expected true"),
        (lambda d: d["tiers"]["essentials"]["ban_rate"].pop("floor"), r"ban_rate\.floor: missing"),
        (lambda d: d["tiers"]["essentials"].update(colour=1), r"essentials\.colour: unknown key"),
        (lambda d: d["tiers"].update(gold={}), r"tiers\.gold: unknown tier"),
        (lambda d: d["collective"].update(min_clients=1), r"collective\.min_clients: must be at least 2"),
    ],
)  # fmt: skip
def test_the_policy_is_validated_with_one_line_naming_the_key(change: Any, message: str) -> None:
    import copy

    data = copy.deepcopy(POLICY_OK)
    assert build_policy(data, "defence.yml", ("essentials",)).of("essentials").waves == (50, 100)
    change(data)
    with pytest.raises(DefenceError, match=message):
        build_policy(data, "defence.yml", ("essentials",))


def test_the_shipped_policy_covers_every_tier_and_plans_a_canary_first() -> None:
    policy = load_policy()
    assert set(policy.tiers) == {"essentials", "professional", "enterprise"}
    track = policy.of("enterprise").track()
    assert track.waves[0].name == "canary" and track.waves[0].hosts_per_client == 1
    assert track.waves[-1].percent == 100 and track.gates == ("window",)
