"""Stop requests from signal handlers, safely.

A Python signal handler runs in the main thread between two bytecodes, possibly while that thread holds a
lock. ``threading.Event.set()`` takes the Event's non-reentrant lock, so calling it from a handler that
interrupted ``Event.wait()`` deadlocks the process (the agent then ignores SIGTERM until systemd kills it).
:class:`StopSignal` therefore only flips a flag in the handler, and wakes the main loop through a self-pipe
registered with :func:`signal.set_wakeup_fd`, so shutdown starts at once rather than after a poll interval.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterable
from types import FrameType
from typing import Any

__all__ = ["StopSignal"]


class StopSignal:
    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._stop = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._previous_wakeup_fd: int | None = None

    def install(self, signums: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """Must be called from the main thread (a Python rule for signal handlers)."""
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in signums:
            self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # No locks and no logging here: see the module docstring.
        self.signum = signum
        self._stop = True

    def set(self) -> None:
        """Request a stop from code (not from a signal handler); also wakes a waiting loop."""
        self._stop = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, b"\0")

    def is_set(self) -> bool:
        return self._stop

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds or until a signal arrives; True once a stop was requested."""
        if not self._stop:
            with contextlib.suppress(InterruptedError):
                select.select([self._read_fd], [], [], timeout)
            with contextlib.suppress(BlockingIOError):
                while os.read(self._read_fd, 512):
                    pass
        return self._stop

    def close(self) -> None:
        """Restore the previous handlers and wakeup fd, then close the pipe."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._previous_wakeup_fd = None
        os.close(self._read_fd)
        os.close(self._write_fd)
