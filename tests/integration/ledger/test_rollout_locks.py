"""One rollout per client at a time: locks are taken all or nothing, a live holder is named when it blocks, a dead
one is recovered with an event, and two processes racing for a client never both win."""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger import Ledger, LedgerError, RolloutLocked, RolloutLockGone, RolloutLockRecord
from orchestrator.ledger.locks import LOCK_STALE_SECONDS, lock_is_stale

HOST = socket.gethostname()


def never_stale(_: RolloutLockRecord) -> bool:
    return False


def always_stale(_: RolloutLockRecord) -> bool:
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_on_this_host(lock: RolloutLockRecord) -> bool:
    """What sentryctl itself judges: a holder on this machine whose process is gone."""
    return lock.holder_host == HOST and not pid_alive(lock.holder_pid)


def make_rollout(ledger: Ledger, uid: str, clients: list[str]) -> None:
    ledger.create_rollout(uid, release_version="1.5.0", track="hotfix", plan={}, clients=clients, hosts=[])


@pytest.fixture
def three(ledger: Ledger) -> Ledger:
    for name in ("acme", "globex", "initech"):
        ledger.add_client(name, "enterprise", {})
    make_rollout(ledger, "ro-a", ["acme", "globex"])
    make_rollout(ledger, "ro-b", ["globex", "initech"])
    make_rollout(ledger, "ro-c", ["initech"])
    return ledger


def held(ledger: Ledger) -> dict[str, str]:
    return {lock.client: lock.rollout_uid for lock in ledger.rollout_locks()}


def test_acquire_heartbeat_release(three: Ledger) -> None:
    recovered = three.acquire_rollout_locks(
        ["globex", "acme"], "ro-a", holder_host="ctl1", holder_pid=4242, is_stale=never_stale, actor="rm@ops"
    )
    assert recovered == []
    locks = three.rollout_locks()
    assert [(lk.client, lk.rollout_uid, lk.holder_host, lk.holder_pid) for lk in locks] == [
        ("acme", "ro-a", "ctl1", 4242),
        ("globex", "ro-a", "ctl1", 4242),
    ]
    assert locks[0].acquired_at == locks[0].heartbeat_at
    acquired = [e for e in three.events() if e.kind == "rollout.lock_acquired"]
    assert [(e.client, e.subject, e.actor, e.payload) for e in acquired] == [
        ("acme", "ro-a", "rm@ops", {"holder_host": "ctl1", "holder_pid": 4242}),
        ("globex", "ro-a", "rm@ops", {"holder_host": "ctl1", "holder_pid": 4242}),
    ]

    # Heartbeats move heartbeat_at and append nothing.
    events = len(three.events())
    assert three.heartbeat_rollout_locks("ro-a") == ["acme", "globex"]
    assert three.heartbeat_rollout_locks("ro-a", holder_host="ctl1", holder_pid=4242) == ["acme", "globex"]
    after = three.rollout_locks()
    assert after[0].heartbeat_at > locks[0].heartbeat_at
    assert after[0].acquired_at == locks[0].acquired_at
    assert len(three.events()) == events
    with pytest.raises(LedgerError, match="rollout ro-a holds no rollout locks as host ctl1 pid 1"):
        three.heartbeat_rollout_locks("ro-a", holder_host="ctl1", holder_pid=1)

    # The same holder asking again keeps what it has: no event, nothing recovered.
    assert (
        three.acquire_rollout_locks(["acme"], "ro-a", holder_host="ctl1", holder_pid=4242, is_stale=never_stale) == []
    )
    assert len(three.events()) == events

    assert three.release_rollout_locks("ro-a") == ["acme", "globex"]
    assert three.rollout_locks() == []
    released = [e for e in three.events() if e.kind == "rollout.lock_released"]
    assert [(e.client, e.subject) for e in released] == [("acme", "ro-a"), ("globex", "ro-a")]
    # Releasing again is no error and no event; a heartbeat now tells the holder it has lost its locks.
    assert three.release_rollout_locks("ro-a") == []
    assert len(three.events()) == events + 2
    with pytest.raises(LedgerError, match="rollout ro-a holds no rollout locks") as info:
        three.heartbeat_rollout_locks("ro-a")
    assert info.value.hint is not None
    assert "sentryctl rollout status ro-a" in info.value.hint


def test_a_held_client_refuses_all_and_names_the_holder(three: Ledger) -> None:
    three.acquire_rollout_locks(["acme", "globex"], "ro-a", holder_host="ctl1", holder_pid=4242, is_stale=never_stale)
    acquired_at = three.rollout_locks()[0].acquired_at
    events = three.events()
    asked: list[RolloutLockRecord] = []

    def judge(lock: RolloutLockRecord) -> bool:
        asked.append(lock)
        return False

    # initech is free, globex is not: neither is taken.
    with pytest.raises(RolloutLocked) as info:
        three.acquire_rollout_locks(["initech", "globex"], "ro-b", holder_host="ctl2", holder_pid=7, is_stale=judge)
    error = info.value
    assert isinstance(error, LedgerError)
    assert str(error.message) == (
        f"client 'globex' is locked by rollout ro-a (host ctl1, pid 4242) since "
        f"{acquired_at.strftime('%Y-%m-%d %H:%M:%S')} UTC, last heartbeat "
        f"{acquired_at.strftime('%Y-%m-%d %H:%M:%S')} UTC"
    )
    assert error.hint == (
        "see 'sentryctl rollout status ro-a'; if that process is dead, carry its rollout on: "
        "'sentryctl rollout resume ro-a'"
    )
    assert "\n" not in str(error)
    assert error.lock.client == "globex"
    assert [lk.client for lk in asked] == ["globex"]
    assert held(three) == {"acme": "ro-a", "globex": "ro-a"}
    assert three.events() == events

    # The same rollout from another live process (a second `rollout resume`) is refused too.
    with pytest.raises(RolloutLocked, match=r"client 'acme' is locked by rollout ro-a .*; 1 more client"):
        three.acquire_rollout_locks(["acme", "globex"], "ro-a", holder_host="ctl1", holder_pid=99, is_stale=judge)


def test_a_stale_lock_is_recovered_with_an_event(three: Ledger) -> None:
    three.acquire_rollout_locks(["globex", "initech"], "ro-b", holder_host="ctl1", holder_pid=11, is_stale=never_stale)
    before = three.rollout_locks()
    recovered = three.acquire_rollout_locks(
        ["acme", "globex"], "ro-a", holder_host="ctl2", holder_pid=22, is_stale=always_stale
    )
    assert recovered == ["globex"]
    # ro-b keeps initech, which was not asked for.
    assert held(three) == {"acme": "ro-a", "globex": "ro-a", "initech": "ro-b"}
    globex = three.rollout_locks()[1]
    assert (globex.holder_host, globex.holder_pid) == ("ctl2", 22)
    assert globex.acquired_at > before[0].acquired_at

    events = three.events()
    kinds = [(e.kind, e.client) for e in events[-2:]]
    assert kinds == [("rollout.lock_acquired", "acme"), ("rollout.lock_recovered", "globex")]
    assert events[-1].subject == "ro-a"
    assert events[-1].payload == {
        "holder_host": "ctl2",
        "holder_pid": 22,
        "reason": "its holder is gone",
        "previous": {
            "rollout_uid": "ro-b",
            "holder_host": "ctl1",
            "holder_pid": 11,
            "acquired_at": events[-1].payload["previous"]["acquired_at"],
            "heartbeat_at": events[-1].payload["previous"]["heartbeat_at"],
        },
    }
    assert events[-1].payload["previous"]["acquired_at"].endswith("Z")
    # ro-b's process learns it lost globex: its heartbeat only finds initech.
    assert three.heartbeat_rollout_locks("ro-b") == ["initech"]
    # Releasing ro-b leaves ro-a's recovered lock alone.
    assert three.release_rollout_locks("ro-b") == ["initech"]
    assert held(three) == {"acme": "ro-a", "globex": "ro-a"}
    assert three.verify().ok


def test_a_lock_of_a_finished_rollout_is_recovered_whatever_the_callback_says(three: Ledger) -> None:
    three.acquire_rollout_locks(["initech"], "ro-c", holder_host=HOST, holder_pid=os.getpid(), is_stale=never_stale)
    three.set_rollout_state("ro-c", "aborted")  # and the process died before releasing
    assert three.acquire_rollout_locks(
        ["initech"], "ro-b", holder_host=HOST, holder_pid=os.getpid(), is_stale=never_stale
    ) == ["initech"]
    assert three.events()[-1].payload["reason"] == "its rollout is aborted"


def test_lock_mistakes_are_refused(three: Ledger) -> None:
    lock = {"holder_host": "ctl1", "holder_pid": 1, "is_stale": never_stale}
    with pytest.raises(LedgerError, match="rollout 'nope' is not in the ledger"):
        three.acquire_rollout_locks(["acme"], "nope", **lock)  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="rollout ro-c does not include client 'acme'") as info:
        three.acquire_rollout_locks(["initech", "acme"], "ro-c", **lock)  # type: ignore[arg-type]
    assert info.value.hint == "it covers initech"
    with pytest.raises(LedgerError, match="is empty"):
        three.acquire_rollout_locks([], "ro-c", **lock)  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="needs a process id"):
        three.acquire_rollout_locks(["initech"], "ro-c", holder_host="ctl1", holder_pid=0, is_stale=never_stale)
    with pytest.raises(LedgerError, match="host name of a rollout lock holder is required"):
        three.acquire_rollout_locks(["initech"], "ro-c", holder_host="", holder_pid=1, is_stale=never_stale)
    three.set_rollout_state("ro-c", "aborted")
    with pytest.raises(LedgerError, match="rollout ro-c is aborted; a finished rollout takes no locks"):
        three.acquire_rollout_locks(["initech"], "ro-c", **lock)  # type: ignore[arg-type]
    assert three.rollout_locks() == []


def _hold_and_die(url: str, home: str) -> None:
    with Ledger.open(url, Path(home)) as ledger:
        ledger.acquire_rollout_locks(
            ["acme"], "ro-a", holder_host=socket.gethostname(), holder_pid=os.getpid(), is_stale=never_stale
        )
        os._exit(0)  # killed before it released anything


def test_a_dead_process_lock_is_recovered(three: Ledger, ledger_url: str, home: Path) -> None:
    child = multiprocessing.get_context("spawn").Process(target=_hold_and_die, args=(ledger_url, str(home)))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    (lock,) = three.rollout_locks()
    assert (lock.rollout_uid, lock.holder_host, lock.holder_pid) == ("ro-a", HOST, child.pid)

    # A live holder on this host is not stale; the dead child is (and sentryctl's own judge agrees).
    assert not dead_on_this_host(RolloutLockRecord("x", "ro-a", HOST, os.getpid(), lock.acquired_at, lock.heartbeat_at))
    assert lock_is_stale(lock)
    # `rollout resume` of the same rollout from a new process takes its lock back.
    assert three.acquire_rollout_locks(
        ["acme", "globex"], "ro-a", holder_host=HOST, holder_pid=os.getpid(), is_stale=dead_on_this_host
    ) == ["acme"]
    assert held(three) == {"acme": "ro-a", "globex": "ro-a"}
    assert three.events()[-2].payload["previous"]["holder_pid"] == child.pid
    assert three.verify().ok


def _race(url: str, home: str, uid: str, clients: list[str], ready: Any, results: Any) -> None:
    with Ledger.open(url, Path(home), actor=uid) as ledger:
        ledger.rollout_locks()  # connected and warm before the start line
        ready.wait(30)
        try:
            ledger.acquire_rollout_locks(
                clients, uid, holder_host="racer", holder_pid=os.getpid(), is_stale=never_stale
            )
        except RolloutLocked as exc:
            results.put((uid, "locked", exc.lock.rollout_uid))
        else:
            results.put((uid, "won", None))


def test_two_processes_racing_for_a_client_exactly_one_wins(three: Ledger, ledger_url: str, home: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(2)
    results = ctx.Queue()
    # They share only globex; the loser must not keep its other client either.
    racers = [
        ctx.Process(target=_race, args=(ledger_url, str(home), uid, clients, ready, results))
        for uid, clients in (("ro-a", ["acme", "globex"]), ("ro-b", ["globex", "initech"]))
    ]
    for racer in racers:
        racer.start()
    outcomes = sorted(results.get(timeout=60) for _ in racers)
    for racer in racers:
        racer.join(60)
    assert [r.exitcode for r in racers] == [0, 0]

    won = [uid for uid, outcome, _ in outcomes if outcome == "won"]
    lost = [(uid, holder) for uid, outcome, holder in outcomes if outcome == "locked"]
    assert len(won) == 1, outcomes
    assert lost == [({"ro-a": "ro-b", "ro-b": "ro-a"}[won[0]], won[0])]
    expected = {"ro-a": ["acme", "globex"], "ro-b": ["globex", "initech"]}[won[0]]
    assert held(three) == dict.fromkeys(expected, won[0])
    assert [e.kind for e in three.events()].count("rollout.lock_acquired") == 2
    assert three.verify().ok


def test_sentryctls_judge_keeps_a_live_holder_here_and_takes_a_silent_one_elsewhere(three: Ledger) -> None:
    """lock_is_stale as `rollout start/resume` use it, an hour past the stale age: a live process of this machine
    keeps its lock however old its heartbeat; a holder on another machine is judged by its heartbeat alone."""
    later = time.time() + 4 * LOCK_STALE_SECONDS

    def an_hour_later(lock: RolloutLockRecord) -> bool:
        return lock_is_stale(lock, now=later)

    three.acquire_rollout_locks(["acme", "globex"], "ro-a", holder_host=HOST, holder_pid=os.getpid(),
                                is_stale=never_stale)  # fmt: skip
    with pytest.raises(RolloutLocked, match="ro-a"):
        three.acquire_rollout_locks(["globex"], "ro-b", holder_host="ctl2", holder_pid=7, is_stale=an_hour_later)
    three.release_rollout_locks("ro-a")
    three.acquire_rollout_locks(["globex"], "ro-a", holder_host="ctl-far", holder_pid=os.getpid(),
                                is_stale=never_stale)  # fmt: skip
    with pytest.raises(RolloutLocked, match="ctl-far"):  # its heartbeat is fresh now
        three.acquire_rollout_locks(
            ["globex"], "ro-b", holder_host=HOST, holder_pid=os.getpid(), is_stale=lock_is_stale
        )
    assert three.acquire_rollout_locks(
        ["globex"], "ro-b", holder_host=HOST, holder_pid=os.getpid(), is_stale=an_hour_later
    ) == ["globex"]


def test_a_holder_whose_locks_were_taken_over_learns_it_at_its_next_heartbeat(three: Ledger) -> None:
    three.acquire_rollout_locks(["acme"], "ro-a", holder_host="ctl1", holder_pid=11, is_stale=never_stale)
    # `rollout resume ro-a` elsewhere judged ctl1 dead and carries the same rollout on.
    three.acquire_rollout_locks(["acme"], "ro-a", holder_host="ctl2", holder_pid=22, is_stale=always_stale)
    with pytest.raises(RolloutLockGone, match="holds no rollout locks as host ctl1 pid 11"):
        three.heartbeat_rollout_locks("ro-a", holder_host="ctl1", holder_pid=11)
    assert three.heartbeat_rollout_locks("ro-a", holder_host="ctl2", holder_pid=22) == ["acme"]
