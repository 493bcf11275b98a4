"""Pushing a pack end to end against a real ledger and a fake fleet: waves, gates, halt and revert, resume after a
crash, the window hold and --emergency. Each guarantee is checked by the record it leaves (assignments, events)."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest

from orchestrator.defence import push as pushes
from orchestrator.defence.executor import PushHalted, PushPaused, PushStopped
from orchestrator.defence.revert import revert
from orchestrator.ledger import Ledger
from orchestrator.ledger.defence_pushes import PushLocked
from orchestrator.settings import Settings

from .conftest import Fleet, add_client, record_pack

DWELL = 30


def run_push(settings: Settings, ledger: Ledger, fleet: Fleet, clients: list[str], version: str = "1.0.0",
             emergency: str | None = None) -> str:  # fmt: skip
    planned = pushes.prepare(
        settings, ledger, version, clients, emergency_reason=emergency, dwell_seconds=DWELL, now=fleet.now
    )
    timing = pushes.Timing(poll_seconds=5, clock=fleet.clock, wait=fleet.wait)
    box: list[str] = []
    try:
        return pushes.start(settings, ledger, planned, on_event=lambda e: None, timing=timing, on_created=box.append)
    finally:
        fleet.uid = box[0] if box else None  # type: ignore[attr-defined]


def assigned_hosts(ledger: Ledger, version: str) -> set[str]:
    """Every host that was ever assigned ``version`` (from the chained events)."""
    return {
        f"{e.client}/{e.subject}"
        for e in ledger.events()
        if e.kind == "defence.assigned" and e.payload.get("version") == version
    }


def test_canary_then_waves_every_host_confirms(settings: Settings, ledger: Ledger, fleet: Fleet) -> None:
    add_client(settings, ledger, "acme", "professional", 5)
    add_client(settings, ledger, "globex", "enterprise", 2, first=2)
    record_pack(ledger, "1.0.0")
    fleet.tick()
    order: list[set[str]] = []
    fleet.on_tick.append(lambda f: order.append({f"{a.client}/{a.host}" for a in ledger.assignments() if a.version}))
    uid = run_push(settings, ledger, fleet, ["acme", "globex"])
    record = ledger.push(uid)
    assert record is not None and record.state == "completed"
    assert {h["state"] for h in record.hosts.values()} == {"confirmed"}
    # The canary (one host per client) alone first, for the whole dwell; then the waves, cumulative.
    assert order[0] == {"acme/a1", "globex/g1"}
    dwell_ticks = [s for s in order if s == {"acme/a1", "globex/g1"}]
    assert len(dwell_ticks) >= DWELL // 5
    assert {a.host: a.version for a in ledger.assignments()} == dict.fromkeys(
        ["a1", "a2", "a3", "a4", "a5", "g1", "g2"], "1.0.0"
    )
    assert all(a.push_uid == uid for a in ledger.assignments())


@pytest.mark.parametrize(
    ("behaviour", "gate"),
    [("slow", "detector"), ("refuse", "refused"), ("degraded", "health"), ("silent", "heartbeat")],
)
def test_a_failed_canary_gate_halts_and_reverts_only_the_canary(
    settings: Settings, ledger: Ledger, fleet: Fleet, behaviour: str, gate: str
) -> None:
    add_client(settings, ledger, "acme", "professional", 4)
    record_pack(ledger, "0.9.0")
    record_pack(ledger, "1.0.0")
    ledger.assign_pack("acme", ["a1", "a2", "a3", "a4"], "0.9.0", ledger.pack("0.9.0").digest)  # type: ignore[union-attr]
    fleet.tick()
    fleet.behaviour[("acme", "a1")] = behaviour
    with pytest.raises(PushHalted, match=rf"acme/a1: {gate} gate") as caught:
        run_push(settings, ledger, fleet, ["acme"])
    assert caught.value.exit_code == 1
    record = ledger.push(fleet.uid)  # type: ignore[attr-defined]
    assert record is not None and record.state == "halted" and f"{gate} gate" in (record.halt_reason or "")
    assert assigned_hosts(ledger, "1.0.0") == {"acme/a1"}  # no host outside the canary ever got it
    assert {a.host: a.version for a in ledger.assignments()} == dict.fromkeys(["a1", "a2", "a3", "a4"], "0.9.0")
    assert record.hosts["acme/a1"]["state"] == "reverted" and record.hosts["acme/a2"]["state"] == "pending"
    assert ledger.push_locks() == []


def test_a_canary_banning_far_above_its_own_baseline_halts(settings: Settings, ledger: Ledger, fleet: Fleet) -> None:
    add_client(settings, ledger, "acme", "professional", 2)
    record_pack(ledger, "1.0.0")
    quiet = fleet.now
    fleet.now -= dt.timedelta(hours=2)
    fleet.ban("acme", "a1", "203.0.113.1", 24)  # its baseline: 24 bans a day, 1 an hour
    fleet.ban("acme", "a2", "203.0.113.1", 24)
    fleet.now = quiet
    fleet.tick()

    def bans_a_lot(f: Fleet, client: str, host: str) -> None:
        f.beat(client, host)
        f.ban(client, host, "203.0.113.9", 10)

    fleet.behaviour[("acme", "a1")] = bans_a_lot
    with pytest.raises(PushHalted, match=r"acme/a1: ban_rate gate: \d+ bans"):
        run_push(settings, ledger, fleet, ["acme"])
    assert assigned_hosts(ledger, "1.0.0") == {"acme/a1"}
    assert ledger.assignment("acme", "a1").version is None  # type: ignore[union-attr]


def test_a_few_bans_on_a_quiet_host_stay_under_the_floor(settings: Settings, ledger: Ledger, fleet: Fleet) -> None:
    add_client(settings, ledger, "acme", "professional", 1)
    record_pack(ledger, "1.0.0")
    fleet.tick()
    calls = []

    def two_bans(f: Fleet, client: str, host: str) -> None:
        f.beat(client, host)
        if not calls:
            f.ban(client, host, "203.0.113.9", 2)
        calls.append(1)

    fleet.behaviour[("acme", "a1")] = two_bans
    uid = run_push(settings, ledger, fleet, ["acme"])
    assert ledger.push(uid).state == "completed"  # type: ignore[union-attr]


def test_a_host_that_never_reports_the_digest_halts_at_the_confirm_timeout(
    settings: Settings, ledger: Ledger, fleet: Fleet
) -> None:
    add_client(settings, ledger, "acme", "professional", 3)
    record_pack(ledger, "1.0.0")
    fleet.tick()
    fleet.behaviour[("acme", "a2")] = "stuck"  # a later wave's host: heartbeats go on, the pack never shows
    with pytest.raises(PushHalted, match=r"acme/a2.* did not report pack 1\.0\.0 within 90s"):
        run_push(settings, ledger, fleet, ["acme"])
    assert {a.host: a.version for a in ledger.assignments()} == {"a1": None, "a2": None, "a3": None}
    assert assigned_hosts(ledger, "1.0.0") == {"acme/a1", "acme/a2", "acme/a3"}


def test_resume_after_a_crash_recovers_the_lock_and_never_reassigns_confirmed_hosts(
    settings: Settings, ledger: Ledger, fleet: Fleet
) -> None:
    add_client(settings, ledger, "acme", "professional", 3)
    record_pack(ledger, "1.0.0")
    fleet.tick()

    class Crash(Exception):
        pass

    def crash_in_dwell(f: Fleet) -> None:
        record = ledger.push(f.uid_now())  # type: ignore[attr-defined]
        if record.hosts["acme/a1"].get("state") == "confirmed" and record.detail.get("dwell_started_at"):
            raise Crash

    fleet.uid_now = lambda: ledger.pushes(limit=1)[0].uid  # type: ignore[attr-defined]
    fleet.on_tick.append(crash_in_dwell)
    with pytest.raises(Crash):
        run_push(settings, ledger, fleet, ["acme"])
    uid = fleet.uid  # type: ignore[attr-defined]
    # The process died: its lock stays, held by a pid that is gone.
    dead = subprocess.Popen(["true"])
    dead.wait()
    ledger.release_push_locks(uid)
    ledger.acquire_push_locks(["acme"], uid, holder_host=__import__("socket").gethostname(), holder_pid=dead.pid,
                              is_stale=lambda _l: False)  # fmt: skip
    fleet.on_tick.clear()
    with pytest.raises(PushLocked):  # another push of the same client is refused while a live holder holds it
        record_pack(ledger, "1.0.1")
        ledger.acquire_push_locks(["acme"], uid, holder_host="elsewhere", holder_pid=1, is_stale=lambda _l: False)
    timing = pushes.Timing(poll_seconds=5, clock=fleet.clock, wait=fleet.wait)
    pushes.resume(settings, ledger, uid, on_event=lambda e: None, timing=timing)
    record = ledger.push(uid)
    assert record is not None and record.state == "completed"
    kinds = [(e.kind, e.subject) for e in ledger.events()]
    assert ("defence.push_lock_recovered", uid) in kinds
    assigned = [e.subject for e in ledger.events() if e.kind == "defence.assigned"]
    assert sorted(assigned) == ["a1", "a2", "a3"]  # a1 (confirmed before the crash) once, not again


def test_a_closed_window_holds_the_push_and_an_emergency_is_recorded(
    settings: Settings, ledger: Ledger, fleet: Fleet
) -> None:
    add_client(settings, ledger, "acme", "professional", 2, window="Sat 02:00-03:00 UTC")
    record_pack(ledger, "1.0.0")
    fleet.tick()
    with pytest.raises(PushPaused, match="waiting for window") as caught:
        run_push(settings, ledger, fleet, ["acme"])
    assert caught.value.exit_code == 3
    held = ledger.push(fleet.uid)  # type: ignore[attr-defined]
    assert held is not None and held.state == "waiting_window" and held.emergency_reason is None
    assert assigned_hosts(ledger, "1.0.0") == set()
    ledger.set_push_state(held.uid, "aborted")
    uid = run_push(settings, ledger, fleet, ["acme"], emergency="botnet hitting logins now")
    record = ledger.push(uid)
    assert record is not None and record.state == "completed" and record.emergency_reason == "botnet hitting logins now"
    created = [e for e in ledger.events() if e.kind == "defence.push_created" and e.subject == uid]
    assert created[0].payload["emergency_reason"] == "botnet hitting logins now"


def test_a_24_7_tier_is_never_held_by_its_window(settings: Settings, ledger: Ledger, fleet: Fleet) -> None:
    add_client(settings, ledger, "acme", "enterprise", 1, window="Sat 02:00-03:00 UTC")
    record_pack(ledger, "1.0.0")
    fleet.tick()
    assert ledger.push(run_push(settings, ledger, fleet, ["acme"])).state == "completed"  # type: ignore[union-attr]


def test_the_kill_switch_stops_a_running_push_and_reverts_its_hosts(
    settings: Settings, ledger: Ledger, fleet: Fleet
) -> None:
    add_client(settings, ledger, "acme", "professional", 3)
    record_pack(ledger, "1.0.0")
    fleet.tick()
    pressed: list[object] = []

    def press_in_dwell(f: Fleet) -> None:
        if not pressed and any(a.version for a in ledger.assignments()):
            pressed.append(revert(ledger, ["acme"], wait_seconds=0))

    fleet.on_tick.append(press_in_dwell)
    with pytest.raises(PushStopped, match="reverted while it ran"):
        run_push(settings, ledger, fleet, ["acme"])
    record = ledger.push(fleet.uid)  # type: ignore[attr-defined]
    assert record is not None and record.state == "reverted"
    assert {a.host: a.version for a in ledger.assignments()} == {"a1": None}
    assert assigned_hosts(ledger, "1.0.0") == {"acme/a1"}
    assert ledger.push_locks() == []
