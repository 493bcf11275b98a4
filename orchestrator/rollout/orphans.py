"""A dead controller's Ansible runs, settled before a resume touches a host.

kill -9 of ``sentryctl`` does not kill the ansible-playbook it started (nor its workers, each in a session of its
own): it goes on switching hosts. A resume that ran the same hosts at once would race it. So a resume first
finds the runs of its rollout the ledger still has as running, waits (bounded) for their processes to end on
their own, which leaves each host whole, and kills what is left at the bound. Only a holder of the rollout's
locks does this (the last holder is dead); the dead runs are then recorded as cancelled.
"""

from __future__ import annotations

import logging
import time

from ..ledger import Ledger
from ..runner import kill_leftovers, run_processes
from ..settings import Settings
from .events import EventSink, RolloutEvent

log = logging.getLogger(__name__)

ORPHAN_WAIT_SECONDS = 120.0


def settle_orphaned_runs(
    settings: Settings, ledger: Ledger, uid: str, on_event: EventSink, *, wait: float = ORPHAN_WAIT_SECONDS
) -> list[str]:
    """Wait up to ``wait`` seconds for the processes of rollout ``uid``'s unfinished runs, then kill the rest;
    returns the run ids that still had processes. A run that has none is left alone (there is nothing to race)."""
    unfinished = [r.uid for r in ledger.runs(limit=200) if r.status == "running" and r.summary.get("rollout") == uid]
    alive = [run for run in unfinished if run_processes(settings.runs_dir / run)]
    if alive:
        _wait_then_kill(settings, uid, alive, on_event, wait)
    for run in unfinished:
        ledger.finish_run(run, "cancelled")  # its controller died: no one will record its outcome
    return alive


def _wait_then_kill(settings: Settings, uid: str, alive: list[str], on_event: EventSink, wait: float) -> None:
    on_event(
        RolloutEvent(
            "wave", f"waiting up to {wait:.0f}s for the ansible runs a dead controller left: {', '.join(alive)}"
        )
    )
    deadline = time.monotonic() + wait
    left = alive
    while left and time.monotonic() < deadline:
        time.sleep(1.0)
        left = [run for run in left if run_processes(settings.runs_dir / run)]
    for run in left:
        log.warning("run %s of rollout %s still ran after %.0fs: killing it", run, uid, wait)
        on_event(RolloutEvent("wave", f"stopped the orphaned run {run} (still running after {wait:.0f}s)", ok=False))
        kill_leftovers(settings.runs_dir / run)
