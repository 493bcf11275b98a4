"""Rollout locks: one rollout at a time per client, and a dead holder's lock recovered rather than waited on.

A lock is a row per client naming the rollout and the process that holds it (host name and pid). Taking locks is
all or nothing in one writing transaction; writers are serialized by the chain's write lock (see :mod:`.engine`),
so two processes that race for the same client are decided in order and exactly one wins, on SQLite and on
PostgreSQL alike.

Whether a holder is dead is the caller's call (``is_stale``: e.g. same host and the pid is gone, or no heartbeat
for too long), with one exception the ledger can judge itself: a lock whose rollout already reached a final state
(it crashed between finishing and releasing) is always recovered.

Whether a holder is dead, as sentryctl judges it, is :func:`lock_is_stale`: on this machine by its process (a
live holder is never stale, whatever its heartbeat's age; a reused pid is told apart by the process start time),
on another machine by the age of its heartbeat (the holder renews it during every wave, see
``rollout/lockkeeper.py``).

Heartbeats refresh ``heartbeat_at`` and append no event: they say a holder is alive, which is not a change of who
holds what, and one per wave and host would drown the log. Taking, recovering and releasing are events.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import lockrows
from .base import LedgerMixin, names, required
from .errors import LedgerError, RolloutLocked
from .models import Rollout, RolloutLock
from .records import FINAL_ROLLOUT_STATES, RolloutLockRecord
from .rollouts import require_rollout

# A holder renews its locks every HEARTBEAT_SECONDS; one on another machine silent for LOCK_STALE_SECONDS is dead.
HEARTBEAT_SECONDS = 60.0
LOCK_STALE_SECONDS = 15 * 60

ROLLOUT_LOCKS = lockrows.LockTable(
    model=RolloutLock,
    owner_column="rollout_uid",
    owner_model=Rollout,
    final_states=frozenset(FINAL_ROLLOUT_STATES),
    events="rollout.lock_",
    noun="rollout",
    locked=RolloutLocked,
    gone_hint="another process may have taken them over; see 'sentryctl rollout status {uid}'",
)
# The start time read from /proc is exact to a second (boot time) plus a clock tick: a process started more than
# this after the lock was taken cannot be the process that took it.
_START_SLACK_SECONDS = 2.0


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` of this machine started (seconds since the epoch), or None when there is no such live
    process (gone, or a zombie waiting to be reaped). Same reading as ``lab/proc.py``'s start ticks."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name (field 2) may hold spaces
    if fields[0] == "Z":
        return None
    return int(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def lock_is_stale(
    lock: RolloutLockRecord,
    *,
    this_host: str | None = None,
    now: float | None = None,
    started: Callable[[int], float | None] = process_start_time,
) -> bool:
    """Whether the holder of ``lock`` is gone.

    On this machine the process decides, never the heartbeat's age: a live holder in a long wave is not stale; a
    holder whose pid is gone is, and so is one whose pid now belongs to a process started after the lock was taken
    (the pid was reused). A holder on another machine cannot be seen from here: it is stale when its heartbeat is
    older than LOCK_STALE_SECONDS."""
    if lock.holder_host == (this_host if this_host is not None else socket.gethostname()):
        start = started(int(lock.holder_pid))
        return start is None or start > lock.acquired_at.timestamp() + _START_SLACK_SECONDS
    age = (now if now is not None else time.time()) - lock.heartbeat_at.timestamp()
    return age > LOCK_STALE_SECONDS


def _check_pid(pid: int) -> None:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise LedgerError(f"a rollout lock holder needs a process id, not {pid!r}")


class RolloutLocksMixin(LedgerMixin):
    """Rollout locks; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def acquire_rollout_locks(
        self,
        clients: Sequence[str],
        rollout_uid: str,
        *,
        holder_host: str,
        holder_pid: int,
        is_stale: Callable[[RolloutLockRecord], bool],
        actor: str | None = None,
    ) -> list[str]:
        """Lock every one of ``clients`` for the live rollout ``rollout_uid``, or none of them.

        A client locked by another holder that is alive raises :class:`RolloutLocked` naming it. A lock whose
        holder ``is_stale`` says is dead, or whose rollout is already final, is taken over (event
        ``rollout.lock_recovered`` naming the previous holder); a free client is locked (``rollout.lock_acquired``);
        a lock this very holder (same rollout, host and pid) already has is kept. Returns the recovered clients.

        ``is_stale`` runs inside the writing transaction: it must be quick and must not use the ledger."""
        wanted = names(clients, f"the clients to lock for rollout {rollout_uid}")
        required(holder_host, "the host name of a rollout lock holder")
        _check_pid(holder_pid)
        with self._write(actor) as tx:
            rollout = require_rollout(tx.session, rollout_uid, hosts=False)
            if rollout.state in FINAL_ROLLOUT_STATES:
                raise LedgerError(f"rollout {rollout_uid} is {rollout.state}; a finished rollout takes no locks")
            outside = [c for c in wanted if c not in rollout.clients]
            if outside:
                raise LedgerError(
                    f"rollout {rollout_uid} does not include client {outside[0]!r}",
                    hint=f"it covers {', '.join(rollout.clients)}",
                )
            return lockrows.take(tx, ROLLOUT_LOCKS, wanted, rollout_uid, holder_host, holder_pid, is_stale)

    def release_rollout_locks(self, rollout_uid: str, *, actor: str | None = None) -> list[str]:
        """Release every lock ``rollout_uid`` holds (one ``rollout.lock_released`` event each) and return their
        clients. Locks it no longer holds (recovered by another rollout) are left alone; none held is no error."""
        with self._write(actor) as tx:
            return lockrows.release(tx, ROLLOUT_LOCKS, rollout_uid)

    def heartbeat_rollout_locks(
        self,
        rollout_uid: str,
        *,
        holder_host: str | None = None,
        holder_pid: int | None = None,
        actor: str | None = None,
    ) -> list[str]:
        """Mark the locks of ``rollout_uid`` alive now (no event) and return their clients. With ``holder_host``
        and ``holder_pid``, only locks held by that process count: another process that recovered the rollout's
        locks does not keep this one going. Holding none raises :class:`RolloutLockGone`: the caller has lost its locks
        and must stop."""
        with self._write(actor) as tx:
            return lockrows.beat(tx, ROLLOUT_LOCKS, rollout_uid, holder_host, holder_pid)

    def rollout_locks(self) -> list[RolloutLockRecord]:
        """Every lock held now, by client."""
        with self._read() as session:
            return lockrows.held(session, ROLLOUT_LOCKS)


def lock_record(lock: RolloutLock) -> RolloutLockRecord:
    return ROLLOUT_LOCKS.record(lock)
