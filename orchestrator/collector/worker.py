"""Background work beside the collector's server (the incident engine, the dead-man heartbeat): a function run
every few seconds in a daemon thread, started before the server and stopped, bounded, after it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Worker(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self, timeout: float) -> bool: ...


class Loop:
    """Runs ``tick`` every ``interval`` seconds until :meth:`stop`; a failing tick is logged and the next one runs
    (a database that is briefly away must not end the engine or the heartbeat)."""

    def __init__(self, name: str, tick: Callable[[], object], interval: float) -> None:
        self.name = name
        self._tick = tick
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Ask the loop to end and wait at most ``timeout`` s; False if a tick is still running then."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:
                log.exception("%s: a pass failed; the next one runs in %.0f s", self.name, self._interval)
            self._stop.wait(self._interval)
