"""Keeping a rollout's locks alive while it works, and noticing when another controller took them over.

A wave (the Ansible run, then the health and smoke gates) may take longer than a holder on another machine may
stay silent (``LOCK_STALE_SECONDS``), so the locks are renewed on a thread of their own every ``interval``
seconds while the wave runs, not only between waves. Every renewal names this holder (host and pid): if another
controller judged this one dead and took the locks over, the renewal finds none, the keeper says so (``lost``),
and the executor stops at its next step with one line (:class:`RolloutLockLost`) instead of working on.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from ..ledger import Ledger, RolloutLockGone
from ..ledger.locks import HEARTBEAT_SECONDS
from .errors import RolloutLockLost

log = logging.getLogger(__name__)


class LockKeeper:
    def __init__(
        self,
        ledger: Ledger,
        uid: str,
        holder_host: str,
        holder_pid: int,
        *,
        interval: float = HEARTBEAT_SECONDS,
        on_lost: threading.Event | None = None,
    ) -> None:
        self.ledger = ledger
        self.uid = uid
        self.holder_host = holder_host
        self.holder_pid = holder_pid
        self.interval = interval
        self.on_lost = on_lost  # set when the locks are gone, so that waits (soak) end early
        self.lost: str | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Renew now; raises :class:`RolloutLockLost` if this holder lost its locks (now or on the thread)."""
        if self.lost is None:
            self._renew()
        if self.lost is not None:
            raise RolloutLockLost(
                f"rollout {self.uid} lost its locks to another controller; this one stops here ({self.lost})",
                hint=f"see who carries it on: sentryctl rollout status {self.uid}",
            )

    def _renew(self) -> None:
        try:
            self.ledger.heartbeat_rollout_locks(self.uid, holder_host=self.holder_host, holder_pid=self.holder_pid)
        except RolloutLockGone as exc:
            self.lost = exc.message
            if self.on_lost is not None:
                self.on_lost.set()

    def _loop(self) -> None:
        while not self._done.wait(self.interval) and self.lost is None:
            try:
                self._renew()
            except Exception:  # a ledger hiccup must not kill the keeper: the next beat tries again
                log.warning("renewing the locks of rollout %s failed; trying again", self.uid, exc_info=True)

    def __enter__(self) -> LockKeeper:
        self._done.clear()
        self._thread = threading.Thread(target=self._loop, name=f"locks-{self.uid}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._done.set()
        if self._thread is not None:
            # Bounded: one renewal is one short ledger write; a keeper stuck past this is left (a daemon thread).
            self._thread.join(timeout=60)
            if self._thread.is_alive():
                log.warning("the lock keeper of rollout %s did not stop within 60 s", self.uid)
            self._thread = None
