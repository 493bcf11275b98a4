"""What the ledger API returns and accepts: frozen, typed values with no tie to a database session."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..track_names import TRACK_NAMES
from .chain import parse_stamp

RunStatus = Literal["running", "succeeded", "failed", "cancelled"]
FinalRunStatus = Literal["succeeded", "failed", "cancelled"]

RUN_STATUSES: frozenset[str] = frozenset(("running", "succeeded", "failed", "cancelled"))
FINAL_RUN_STATUSES: frozenset[str] = RUN_STATUSES - {"running"}
TRACKS: frozenset[str] = frozenset(TRACK_NAMES)

RolloutState = Literal[
    "planned",
    "running",
    "halted",
    "rolling_back",
    "rolled_back",
    "completed",
    "completed_with_failures",
    "waiting_window",
    "aborted",
    "failed",
]
# Where a rollout may go from each state. ``running -> running`` and ``rolling_back -> rolling_back`` are resumes
# after an interruption; every live state can be aborted; the final states go nowhere (a rollback of a finished
# rollout is a new rollout whose ``parent_uid`` names it, and goes straight from ``planned`` to ``rolling_back``).
# ``completed_with_failures`` (hosts left without the release, kept pending) and ``waiting_window`` (clients held by
# their maintenance window) are not final: ``rollout resume`` takes them back to ``running``.
ROLLOUT_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "planned": frozenset(("running", "rolling_back", "aborted")),
    "running": frozenset(("running", "halted", "completed", "completed_with_failures", "waiting_window", "aborted")),
    "completed_with_failures": frozenset(("running", "aborted")),
    "waiting_window": frozenset(("running", "aborted")),
    "halted": frozenset(("rolling_back", "aborted")),
    "rolling_back": frozenset(("rolling_back", "rolled_back", "failed", "aborted")),
    "completed": frozenset(),
    "rolled_back": frozenset(),
    "aborted": frozenset(),
    "failed": frozenset(),
}
ROLLOUT_STATES: frozenset[str] = frozenset(ROLLOUT_TRANSITIONS)
FINAL_ROLLOUT_STATES: frozenset[str] = frozenset(s for s, nexts in ROLLOUT_TRANSITIONS.items() if not nexts)

RolloutHostStatus = Literal[
    "pending",
    "deferred",
    "waiting_training",
    "skipped",
    "updating",
    "updated",
    "healthy",
    "failed",
    "unreachable",
    "rolling_back",
    "rolled_back",
    "rollback_failed",
]
ROLLOUT_HOST_STATUSES: frozenset[str] = frozenset(get_args(RolloutHostStatus))
# The wave of a host that is in the plan but in no wave (skipped, deferred, waiting for training); 0 is the canary.
NO_WAVE = -1

# (client, host, wave, status, target_version, previous_version): one host of a new rollout.
RolloutHostSpec = tuple[str, str, int, str, str, str | None]

TrainingState = Literal["scheduled", "signed_off"]
TRAINING_STATES: frozenset[str] = frozenset(("scheduled", "signed_off"))


@dataclass(frozen=True)
class HostRecord:
    name: str
    address: str
    port: int
    added_at: _dt.datetime
    removed_at: _dt.datetime | None = None


@dataclass(frozen=True)
class ClientRecord:
    """One incarnation of a client: removing it and adding the same name again gives a new ``id``.
    ``hosts`` are the live hosts (none once the client is removed; :meth:`Ledger.hosts` has the history)."""

    id: int
    name: str
    tier: str
    meta: Mapping[str, Any]
    created_at: _dt.datetime
    removed_at: _dt.datetime | None = None
    hosts: tuple[HostRecord, ...] = ()

    @property
    def live(self) -> bool:
        return self.removed_at is None


@dataclass(frozen=True)
class HostSync:
    """Names of the hosts :meth:`Ledger.sync_hosts` added, changed (address or port) and removed."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass(frozen=True)
class HostResult:
    """How one host fared in a run: ``ok``, ``changed``, ``failed``, ``unreachable``, ... ``detail`` holds what
    is worth keeping (for exec: tails of stdout and stderr)."""

    status: str
    rc: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunHostRecord:
    host: str
    status: str
    rc: int | None
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class RunRecord:
    uid: str
    kind: str
    client: str | None
    actor: str
    started_at: _dt.datetime
    finished_at: _dt.datetime | None
    status: str
    summary: Mapping[str, Any]
    hosts: tuple[RunHostRecord, ...] = ()

    def host_results(self) -> dict[str, HostResult]:
        return {h.host: HostResult(h.status, h.rc, h.detail) for h in self.hosts}


@dataclass(frozen=True)
class HostReleaseRecord:
    client: str
    host: str
    stack_version: str
    release_version: str
    release_track: str
    previous_release_version: str | None
    updated_at: _dt.datetime
    run_uid: str | None


@dataclass(frozen=True)
class RolloutHostRecord:
    """One host of a rollout: its wave (0 is the canary, :data:`NO_WAVE` for none), where it stands, the release
    it goes to and the one it ran before (what a rollback re-applies)."""

    client: str
    host: str
    wave: int
    status: str
    target_version: str
    previous_version: str | None
    detail: Mapping[str, Any]
    updated_at: _dt.datetime


@dataclass(frozen=True)
class RolloutRecord:
    """A rollout with its hosts (by wave, client, host). ``parent_uid`` is set on a rollback rollout: the uid of
    the rollout it undoes. ``detail`` gathers what the state changes said (which gate failed and why)."""

    uid: str
    release_version: str
    track: str
    state: str
    plan: Mapping[str, Any]
    clients: tuple[str, ...]
    emergency_reason: str | None
    parent_uid: str | None
    actor: str
    created_at: _dt.datetime
    updated_at: _dt.datetime
    finished_at: _dt.datetime | None
    detail: Mapping[str, Any]
    hosts: tuple[RolloutHostRecord, ...] = ()

    @property
    def final(self) -> bool:
        return self.state in FINAL_ROLLOUT_STATES

    def host(self, client: str, host: str) -> RolloutHostRecord | None:
        return next((h for h in self.hosts if (h.client, h.host) == (client, host)), None)


@dataclass(frozen=True)
class RolloutLockRecord:
    """A client held by a rollout: which one, and the process that holds it (host name and pid)."""

    client: str
    rollout_uid: str
    holder_host: str
    holder_pid: int
    acquired_at: _dt.datetime
    heartbeat_at: _dt.datetime


@dataclass(frozen=True)
class TrainingRecord:
    """One on-site training session: ``scheduled`` until the trainer signs it off with its attendees.
    ``signed_off_by`` is who recorded the sign-off in the ledger (the actor); ``trainer`` who trained."""

    id: int
    client: str
    release_version: str
    module: str | None
    scheduled_for: _dt.date | None
    trainer: str
    state: str
    signed_off_at: _dt.datetime | None
    signed_off_by: str | None
    attendees: tuple[str, ...]
    notes: str | None
    created_at: _dt.datetime

    @property
    def signed_off(self) -> bool:
        return self.state == "signed_off"


@dataclass(frozen=True)
class EventRecord:
    """One event exactly as chained: ``at`` is the hashed UTC text (see :attr:`timestamp` for a datetime)."""

    seq: int
    at: str
    actor: str
    kind: str
    client: str | None
    subject: str | None
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str

    @property
    def timestamp(self) -> _dt.datetime:
        return parse_stamp(self.at)


AUDIT_RESULTS = frozenset({"compliant", "drift", "error"})


@dataclass(frozen=True)
class AuditRecord:
    """One audit as the ledger keeps it; ``bundle_sha256`` is the sha256 of the bundle's signed manifest."""

    uid: str
    client: str
    auditor: str
    started_at: _dt.datetime
    finished_at: _dt.datetime
    result: str
    hosts: Mapping[str, str]
    bundle_path: str
    bundle_sha256: str
