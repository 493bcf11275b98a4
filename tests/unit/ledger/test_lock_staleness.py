"""Whether a lock's holder is gone: on this machine by its process (never by the heartbeat's age alone; a reused
pid is told apart by the process start time), on another machine by the heartbeat's age."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import time

from orchestrator.ledger.locks import LOCK_STALE_SECONDS, lock_is_stale, process_start_time
from orchestrator.ledger.records import RolloutLockRecord

NOW = time.time()


def lock(host: str, pid: int, *, acquired: float, heartbeat: float) -> RolloutLockRecord:
    at = dt.datetime.fromtimestamp
    return RolloutLockRecord("acme", "ro-1", host, pid, at(acquired, dt.UTC), at(heartbeat, dt.UTC))


def test_a_holder_on_another_machine_is_judged_by_its_heartbeat() -> None:
    fresh = lock("ctl-far", os.getpid(), acquired=NOW - 5000, heartbeat=NOW - 60)
    old = lock("ctl-far", os.getpid(), acquired=NOW - 5000, heartbeat=NOW - LOCK_STALE_SECONDS - 1)
    assert not lock_is_stale(fresh, now=NOW)
    assert lock_is_stale(old, now=NOW)  # our own pid is alive here, but that says nothing about ctl-far


def test_a_live_holder_here_is_never_stale_whatever_its_heartbeat_age() -> None:
    started = process_start_time(os.getpid())
    assert started is not None and abs(started - NOW) < 24 * 3600
    quiet = lock(socket.gethostname(), os.getpid(), acquired=NOW, heartbeat=NOW - 10 * LOCK_STALE_SECONDS)
    assert not lock_is_stale(quiet, now=NOW)


def test_a_gone_or_reused_pid_here_is_stale() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert lock_is_stale(lock(socket.gethostname(), gone.pid, acquired=NOW, heartbeat=NOW), now=NOW)
    # Our pid, alive, but the lock was taken an hour before this process started: another process held it.
    started = process_start_time(os.getpid())
    assert started is not None
    reused = lock(socket.gethostname(), os.getpid(), acquired=started - 3600, heartbeat=NOW)
    assert lock_is_stale(reused, now=NOW)
    assert process_start_time(gone.pid) is None
