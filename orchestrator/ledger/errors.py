"""The ledger's branch of the one exception tree."""

from __future__ import annotations

import datetime as _dt

from ..errors import OrchestratorError
from .records import RolloutLockRecord


class LedgerError(OrchestratorError):
    """Raised when the ledger cannot be opened, migrated, read or written, or a request contradicts its records
    (an unknown client, a duplicate run id, a schema newer than this sentryctl)."""


def _when(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class RolloutLocked(LedgerError):
    """Raised when a client is held by another rollout whose holder is alive. ``lock`` is the first such lock (by
    client name); ``locks`` all of them."""

    def __init__(self, locks: list[RolloutLockRecord]) -> None:
        lock = locks[0]
        more = f"; {len(locks) - 1} more client(s) are locked too" if len(locks) > 1 else ""
        super().__init__(
            f"client {lock.client!r} is locked by rollout {lock.rollout_uid} (host {lock.holder_host}, "
            f"pid {lock.holder_pid}) since {_when(lock.acquired_at)}, last heartbeat {_when(lock.heartbeat_at)}"
            f"{more}",
            # Resume, not abort: resuming recovers a dead holder's lock and finishes its hosts; an abort would leave
            # them as the dead controller left them (maybe half a wave on the new release).
            hint=(
                f"see 'sentryctl rollout status {lock.rollout_uid}'; if that process is dead, carry its rollout on: "
                f"'sentryctl rollout resume {lock.rollout_uid}'"
            ),
        )
        self.lock = lock
        self.locks = tuple(locks)


class RolloutLockGone(LedgerError):
    """Raised when a holder renews locks it no longer holds: another controller judged it dead and took them over."""
