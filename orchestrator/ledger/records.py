"""What the ledger API returns and accepts: frozen, typed values with no tie to a database session."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .chain import parse_stamp

RunStatus = Literal["running", "succeeded", "failed", "cancelled"]
FinalRunStatus = Literal["succeeded", "failed", "cancelled"]
Track = Literal["hotfix", "feature"]

RUN_STATUSES: frozenset[str] = frozenset(("running", "succeeded", "failed", "cancelled"))
FINAL_RUN_STATUSES: frozenset[str] = RUN_STATUSES - {"running"}
TRACKS: frozenset[str] = frozenset(("hotfix", "feature"))


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
