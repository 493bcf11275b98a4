"""What a playbook run reports: per-host outcomes, the run's result, and the simplified events of its progress.

Pure data and pure functions over runner's event dicts; :mod:`.runner` feeds them and is the only module that
imports ansible_runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

HostStatus = Literal["ok", "changed", "failed", "unreachable"]


@dataclass(frozen=True)
class HostOutcome:
    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    rescued: int = 0
    skipped: int = 0
    ignored: int = 0

    @property
    def status(self) -> HostStatus:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status}


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str  # runner's: successful, failed, canceled, timeout (run_timeout passed; the run was killed)
    rc: int
    hosts: Mapping[str, HostOutcome]
    artifact_dir: Path
    stats_seen: bool

    @property
    def ok(self) -> bool:
        """True only when the run finished, reported its stats, and no host failed or was unreachable."""
        return (
            self.status == "successful"
            and self.rc == 0
            and self.stats_seen
            and all(h.status in ("ok", "changed") for h in self.hosts.values())
        )

    def by_status(self, status: HostStatus) -> list[str]:
        return sorted(h for h, o in self.hosts.items() if o.status == status)

    @property
    def changed_total(self) -> int:
        return sum(o.changed for o in self.hosts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "rc": self.rc,
            "ok": self.ok,
            "stats_seen": self.stats_seen,
            "artifact_dir": str(self.artifact_dir),
            "hosts": {h: o.to_json() for h, o in sorted(self.hosts.items())},
        }


@dataclass(frozen=True)
class RunEvent:
    """A simplified Ansible event, for live progress."""

    kind: str  # play_start, task_start, ok, changed, failed, unreachable, skipped, stats
    host: str | None = None
    task: str | None = None
    play: str | None = None
    message: str | None = None


EventCallback = Callable[[RunEvent], None]

_RESULT_KINDS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


def simplify_event(raw: Mapping[str, Any]) -> RunEvent | None:
    """Map one raw runner event to a :class:`RunEvent`, or None for events progress does not show."""
    name = raw.get("event")
    data: Mapping[str, Any] = raw.get("event_data") or {}
    if name == "playbook_on_play_start":
        return RunEvent("play_start", play=data.get("play"))
    if name == "playbook_on_task_start":
        return RunEvent("task_start", task=data.get("task"), play=data.get("play"))
    if name == "playbook_on_stats":
        return RunEvent("stats")
    if name in _RESULT_KINDS:
        kind = _RESULT_KINDS[name]
        res: Mapping[str, Any] = data.get("res") or {}
        if kind == "ok" and res.get("changed"):
            kind = "changed"
        if kind == "failed" and data.get("ignore_errors"):
            kind = "ok"
        message = res.get("msg") if kind in ("failed", "unreachable") else None
        return RunEvent(kind, host=data.get("host"), task=data.get("task"), play=data.get("play"), message=message)
    return None


def outcomes_from_stats(stats: Mapping[str, Any]) -> dict[str, HostOutcome]:
    """Per-host outcome from the ``playbook_on_stats`` event data: the final word, unlike raw failed events
    (a failure inside a block that was rescued is not a failed host)."""
    keys = {
        "ok": "ok",
        "changed": "changed",
        "failures": "failed",
        "dark": "unreachable",
        "rescued": "rescued",
        "skipped": "skipped",
        "ignored": "ignored",
    }
    counts: dict[str, dict[str, int]] = {}
    for stat_key, field_name in keys.items():
        for host, n in (stats.get(stat_key) or {}).items():
            counts.setdefault(host, {})[field_name] = int(n)
    for host in stats.get("processed") or {}:
        counts.setdefault(host, {})
    return {h: HostOutcome(host=h, **c) for h, c in counts.items()}


def unfinished_outcomes(seen: Mapping[str, Mapping[str, int]], targets: Sequence[str]) -> dict[str, HostOutcome]:
    """Per-host outcome of a run that never reported its stats (it was killed at its run timeout): what each host's
    events counted, and every host that had not already failed or been unreachable counted failed once more: the
    run did not finish on it."""
    out: dict[str, HostOutcome] = {}
    for host in dict.fromkeys([*targets, *seen]):
        counts = dict(seen.get(host, {}))
        if not counts.get("failed") and not counts.get("unreachable"):
            counts["failed"] = counts.get("failed", 0) + 1
        out[host] = HostOutcome(host=host, **counts)
    return out


def tail_stdout(result: RunResult, lines: int = 40) -> str:
    """The end of the run's stdout, for error messages and test assertions."""
    path = result.artifact_dir / "stdout"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
