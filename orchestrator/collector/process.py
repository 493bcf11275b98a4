"""A ``sentryctl collector serve`` child process, stopped the one way every caller needs (demo, tests, bench)."""

from __future__ import annotations

import signal
import subprocess

GRACE_SECONDS = 15.0  # uvicorn drains its connections on SIGTERM; past this the process is killed


def stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None, sig: int = signal.SIGTERM) -> None:
    """Signal the process (SIGTERM by default, SIGKILL for fault tests) and wait for it, bounded: a process that
    does not exit within the grace time is killed."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
