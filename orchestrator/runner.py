"""The Ansible engine: the only module that imports ansible_runner.

A run gets its own private data directory under ``<home>/runs/<run id>``; its environment is built from an
allowlist (runner would otherwise copy every variable of this process into its ``command`` artifact); host
keys are always checked strictly against the client's ``known_hosts``; extra variables are passed as a file,
never on the command line. The result is data: status, rc, and per-host outcomes taken from the final stats.

What a run is given is :mod:`.run_config` and what it reports is :mod:`.run_results` (both pure); this module
runs it and handles its processes (cancelling, killing what a stopped run left), and re-exports both modules'
names so importers of ``orchestrator.runner`` keep working.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import sshmux
from .errors import RunCancelled, RunnerError
from .paths import link_collection
from .run_config import (
    ENV_ALLOW,
    LABEL_RE,
    RunRequest,
    build_config,
    build_env,
    connection_vars,
    limit_for,
    new_run_id,
    run_extravars,
    ssh_args,
)
from .run_results import (
    EventCallback,
    HostOutcome,
    HostStatus,
    RunEvent,
    RunResult,
    outcomes_from_stats,
    simplify_event,
    tail_stdout,
    unfinished_outcomes,
)
from .settings import Settings, private_tree

__all__ = [
    "ENV_ALLOW",
    "LABEL_RE",
    "Cancellation",
    "EventCallback",
    "HostOutcome",
    "HostStatus",
    "RunEvent",
    "RunRequest",
    "RunResult",
    "build_config",
    "build_env",
    "connection_vars",
    "kill_leftovers",
    "limit_for",
    "new_run_id",
    "outcomes_from_stats",
    "run_extravars",
    "run_playbook",
    "run_processes",
    "simplify_event",
    "ssh_args",
    "tail_stdout",
    "unfinished_outcomes",
]

log = logging.getLogger(__name__)


class Cancellation:
    """Cancel between plays: a requested cancel takes effect when the current play has ended (the next play
    starts, or at once if no play has started). ``force`` stops at once."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._forced = threading.Event()
        self._at_boundary = threading.Event()
        self._boundary_seen = False

    def request(self, force: bool = False) -> None:
        self._requested.set()
        if force:
            self._forced.set()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def observe(self, event: RunEvent) -> None:
        if event.kind == "play_start":
            self._boundary_seen = True
            if self._requested.is_set():
                self._at_boundary.set()

    def should_stop(self) -> bool:
        if self._forced.is_set():
            return True
        if not self._requested.is_set():
            return False
        return self._at_boundary.is_set() or not self._boundary_seen


def run_playbook(
    request: RunRequest,
    settings: Settings,
    on_event: EventCallback | None = None,
    cancel: Cancellation | None = None,
) -> RunResult:
    """Run a playbook and return its result; raises RunnerError if it cannot start, RunCancelled if cancelled."""
    import ansible_runner
    from ansible_runner.config.runner import RunnerConfig
    from ansible_runner.exceptions import AnsibleRunnerException

    if not request.inventory.known_hosts.exists():
        raise RunnerError(
            f"client {request.inventory.client} has no pinned host keys ({request.inventory.known_hosts})",
            hint=f"pin them first: 'sentryctl hosts pin --client {request.inventory.client}'",
        )
    run_id = request.run_id or new_run_id(request.label)
    config_kwargs = build_config(request, settings, run_id)
    run_dir = Path(config_kwargs["private_data_dir"])
    settings.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (run_dir / "tmp").mkdir(parents=True, mode=0o700)
    run_dir.chmod(0o700)
    (run_dir / "ansible.cfg").write_text("# settings come from the environment: see artifacts/*/command\n")
    sshmux.ensure_masters_dir(settings.home, request.inventory.known_hosts)
    (settings.home / "ansible").mkdir(parents=True, exist_ok=True, mode=0o700)
    link_collection(settings.home)
    vars_file = Path(config_kwargs["extravars"])
    vars_file.write_text(json.dumps(run_extravars(request, settings), sort_keys=True))
    vars_file.chmod(0o600)
    cancel = cancel or Cancellation()
    stats: dict[str, Any] | None = None
    seen: dict[str, dict[str, int]] = {}  # per-host event counts, the outcome of a run killed before its stats

    def handle(raw: dict[str, Any]) -> bool:
        nonlocal stats
        if raw.get("event") == "playbook_on_stats":
            stats = dict(raw.get("event_data") or {})
        event = simplify_event(raw)
        if event is not None:
            if event.host and event.kind in ("ok", "changed", "failed", "unreachable", "skipped"):
                tally = seen.setdefault(event.host, {})
                tally[event.kind] = tally.get(event.kind, 0) + 1
            cancel.observe(event)
            if on_event is not None:
                on_event(event)
        return True

    try:
        rc = RunnerConfig(**config_kwargs)
        rc.prepare()
        rc.env = {k: v for k, v in rc.env.items() if ENV_ALLOW.match(k)}
        runner = ansible_runner.Runner(
            config=rc,
            event_handler=handle,
            # Our own callback, always: without one, runner installs SIGINT/SIGTERM handlers over the caller's.
            cancel_callback=cancel.should_stop,
        )
        status, exit_code = runner.run()
    except (AnsibleRunnerException, OSError) as exc:
        raise RunnerError(f"could not run {request.playbook.name}: {exc}") from exc
    artifact_dir = Path(rc.artifact_dir)
    hosts = _final_outcomes(request, run_dir, str(status), stats, seen)
    result = RunResult(
        run_id=run_id,
        status=str(status),
        rc=int(exit_code if exit_code is not None else -1),
        hosts=hosts,
        artifact_dir=artifact_dir,
        stats_seen=stats is not None,
    )
    (run_dir / "result.json").write_text(json.dumps(result.to_json(), indent=2, sort_keys=True))
    private_tree(run_dir)  # runner writes its artifacts with the process umask
    log.info("run %s: %s rc=%s", run_id, result.status, result.rc)
    if result.status == "canceled":
        raise RunCancelled(f"run {run_id} was cancelled", hint=f"its artifacts are in {artifact_dir}")
    return result


def run_processes(run_dir: Path) -> list[int]:
    """Processes of a run: every one that carries its environment (its private temp dir), but SSH connection
    masters, which serve later runs too and end on their own (ControlPersist)."""
    marker = f"ANSIBLE_LOCAL_TEMP={run_dir / 'tmp'}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if marker in environ and b"[mux]" not in cmdline:
            found.append(int(entry))
    return found


def kill_leftovers(run_dir: Path) -> None:
    """Kill what a stopped run left running. Runner kills ansible-playbook's process group, but Ansible's workers
    and their ssh each run in a session of their own (setsid) and would go on waiting on a hung host."""
    for _ in range(3):  # a worker may fork an ssh while we kill: look again
        pids = run_processes(run_dir)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def _final_outcomes(
    request: RunRequest,
    run_dir: Path,
    status: str,
    stats: Mapping[str, Any] | None,
    seen: Mapping[str, Mapping[str, int]],
) -> dict[str, HostOutcome]:
    if status in ("timeout", "canceled"):
        kill_leftovers(run_dir)
    if stats is not None:
        return outcomes_from_stats(stats)
    if status == "timeout":
        log.warning("run %s passed its %ss run timeout and was killed", run_dir.name, request.run_timeout)
        return unfinished_outcomes(seen, [h.name for h in request.inventory.select(request.limit)])
    return {}
