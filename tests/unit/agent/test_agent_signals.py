from __future__ import annotations

import os
import signal
import threading
import time

from sentry_agent.signals import StopSignal


def test_a_signal_stops_and_wakes_the_loop_at_once() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    stop = StopSignal()
    stop.install([signal.SIGUSR1])
    try:
        assert not stop.wait(0.01)
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        started = time.monotonic()
        woke = stop.wait(10)  # without the wakeup fd this sleeps the whole 10 s
        timer.join()
        assert woke and stop.is_set()
        assert time.monotonic() - started < 5
        assert stop.signum == signal.SIGUSR1
    finally:
        stop.close()
    assert signal.getsignal(signal.SIGUSR1) == before


def test_set_from_another_thread_wakes_the_loop() -> None:
    stop = StopSignal()
    try:
        timer = threading.Timer(0.05, stop.set)
        timer.start()
        started = time.monotonic()
        assert stop.wait(10)
        timer.join()
        assert time.monotonic() - started < 5
        assert stop.signum is None
    finally:
        stop.close()
