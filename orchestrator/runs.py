"""Run a playbook and record it in the ledger: the one home of "start, run, finish, per-host results".

Provision, rollout waves, rollbacks and ``lab ping`` all go through :func:`run_recorded`, so every Ansible run
is in the ledger with the same shape: started before the first SSH connection, finished (or cancelled) whatever
happens, each host's outcome with the reason a failed host failed (the failing task and its message, taken from
the run's own events). :func:`record_releases` then records the release each host runs now, for the callers
that know a host switched (provision after its run, a rollout only once the health gate passed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from . import __version__
from .ledger import HostResult, Ledger
from .releases import Bundle, Release
from .runner import Cancellation, EventCallback, RunEvent, RunRequest, RunResult, new_run_id, run_playbook
from .settings import Settings

Engine = Callable[[RunRequest, Settings, EventCallback | None, Cancellation | None], RunResult]
REASON_LIMIT = 500


def default_engine(
    request: RunRequest, settings: Settings, on_event: EventCallback | None, cancel: Cancellation | None
) -> RunResult:
    return run_playbook(request, settings, on_event=on_event, cancel=cancel)


class FailureReasons:
    """The last failing task and its message per host, collected from the run's events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_host: dict[str, str] = {}

    def observe(self, event: RunEvent) -> None:
        if event.kind not in ("failed", "unreachable") or event.host is None:
            return
        message = " ".join(str(event.message or "").split())
        text = f"{event.task or 'a task'}: {message}" if message else str(event.task or event.kind)
        with self._lock:
            self.by_host[event.host] = text[:REASON_LIMIT]


def reason(result: RunResult, host: str, reasons: Mapping[str, str]) -> str:
    """One line saying why ``host`` did not succeed in ``result`` (its failing task and message when known)."""
    outcome = result.hosts.get(host)
    status = outcome.status if outcome is not None else "unreachable (no result from the run)"
    why = reasons.get(host)
    return f"{status}: {why}" if why else status


def run_recorded(
    settings: Settings,
    ledger: Ledger,
    request: RunRequest,
    *,
    kind: str,
    client: str | None,
    summary: Mapping[str, Any] | None = None,
    on_event: EventCallback | None = None,
    cancel: Cancellation | None = None,
    engine: Engine = default_engine,
) -> tuple[RunResult, dict[str, str]]:
    """Run ``request`` recorded as a ledger run of ``kind``; returns the result and each failed host's reason.

    The ledger run has the runner's run id; it is finished as succeeded or failed with every host's outcome (and
    its reason), or as cancelled when the run raised (Ctrl-C, a runner error) before re-raising."""
    if request.run_id is None:
        request = replace(request, run_id=new_run_id(request.label))
    assert request.run_id is not None
    reasons = FailureReasons()

    def observe(event: RunEvent) -> None:
        reasons.observe(event)
        if on_event is not None:
            on_event(event)

    ledger.start_run(kind, client, dict(summary or {}), uid=request.run_id)
    try:
        result = engine(request, settings, observe, cancel)
    except BaseException:
        ledger.finish_run(request.run_id, "cancelled")
        raise
    failed = {
        h: reason(result, h, reasons.by_host) for h, o in result.hosts.items() if o.status in ("failed", "unreachable")
    }
    ledger.finish_run(
        result.run_id,
        "succeeded" if result.ok else "failed",
        {h: HostResult(o.status, None, {**o.to_json(), **({"why": failed[h]} if h in failed else {})})
         for h, o in result.hosts.items()},
    )  # fmt: skip
    return result, failed


def record_releases(
    ledger: Ledger, client: str, hosts: Iterable[str], release: Bundle | Release, run_uid: str | None
) -> None:
    """Record that each of ``hosts`` of ``client`` runs ``release`` now, switched by run ``run_uid``."""
    for host in sorted(hosts):
        ledger.set_host_release(
            client,
            host,
            stack_version=__version__,
            release_version=release.version,
            release_track=release.track,
            run_uid=run_uid,
        )
