"""Incidents in the ledger: opened (or merged into the open one of the same dedup key) by detection, acknowledged
and resolved by people, each step a row of the incident's timeline and an event of the chain (``incident.opened``,
``incident.merged``, ``incident.acked``, ``incident.resolved``, ``incident.paged``, ``incident.breach``, ...).

Every write takes the chain's write lock first (:meth:`~orchestrator.ledger.store.Ledger._write`), so "is one
open with this key?" and the insert are decided by one writer at a time, across processes too; the partial unique
index on (client, dedup_key) among unresolved incidents backs that up. Detection's watermarks advance in the same
transaction as the incidents they produced (:meth:`IncidentsMixin.apply_detection`), by compare-and-set: a second
collector that read the same records finds the watermark moved and writes nothing.

Times (``at``) come from the caller's clock, injectable in tests; the chain's own timestamps stay real.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .base import LedgerMixin, json_object
from .errors import LedgerError
from .models import Incident, IncidentStep, IncidentWatermark, TelemetryAlert
from .telemetry import AlertRecord, _alert_record

INCIDENT_STATES = ("open", "acked", "resolved")
INCIDENT_KINDS = ("attack", "silent_host", "rollout_halted", "push_halted", "audit_drift")
SEVERITIES = ("low", "medium", "high", "critical")


class IncidentNotFound(LedgerError):
    """Raised when no incident has the given id."""


class IncidentStateError(LedgerError):
    """Raised when a state change is refused (acknowledging a resolved incident, resolving one twice)."""


class WatermarkMoved(LedgerError):
    """Raised (and the whole detection pass rolled back) when another process advanced a watermark first."""


@dataclass(frozen=True)
class IncidentSpec:
    """What detection found: one incident to open, or to merge into the open one with the same dedup key."""

    client: str
    tier: str
    kind: str
    severity: str
    dedup_key: str
    title: str
    hosts: tuple[str, ...]
    due_at: _dt.datetime
    occurrences: int = 1
    detail: Mapping[str, Any] = field(default_factory=dict)
    # once: the key names one event (a silence since a given heartbeat): never reopened after it is resolved,
    # and never merged into (every pass sees the same silence again).
    once: bool = False


@dataclass(frozen=True)
class IncidentStepRecord:
    at: _dt.datetime
    actor: str
    step: str
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class IncidentRecord:
    id: int
    client: str
    tier: str
    kind: str
    severity: str
    dedup_key: str
    title: str
    hosts: tuple[str, ...]
    state: str
    opened_at: _dt.datetime
    opened_by: str
    last_seen_at: _dt.datetime
    occurrences: int
    due_at: _dt.datetime
    acked_at: _dt.datetime | None
    acked_by: str | None
    resolved_at: _dt.datetime | None
    resolved_by: str | None
    resolve_note: str | None
    detail: Mapping[str, Any]

    @property
    def seconds_to_ack(self) -> float | None:
        return None if self.acked_at is None else (self.acked_at - self.opened_at).total_seconds()

    @property
    def seconds_to_resolve(self) -> float | None:
        return None if self.resolved_at is None else (self.resolved_at - self.opened_at).total_seconds()

    @property
    def responded_at(self) -> _dt.datetime | None:
        """When a person first answered: the acknowledgement, or the resolution when nobody acknowledged."""
        return self.acked_at or self.resolved_at


@dataclass(frozen=True)
class DetectionResult:
    opened: tuple[IncidentRecord, ...]
    merged: tuple[IncidentRecord, ...]


class IncidentsMixin(LedgerMixin):
    """Incidents, their timelines and detection watermarks; part of :class:`~orchestrator.ledger.store.Ledger`."""

    # ------------------------------------------------------------------------------------------- detection

    def apply_detection(
        self,
        specs: Sequence[IncidentSpec],
        watermarks: Mapping[str, tuple[int, int]],
        *,
        at: _dt.datetime,
        actor: str | None = None,
    ) -> DetectionResult:
        """Open or merge every spec and move each watermark ``name`` from ``old`` to ``new``, all in one
        transaction. Raises :class:`WatermarkMoved` (nothing written) when a watermark is no longer at ``old``."""
        for spec in specs:
            _check_spec(spec)
        with self._write(actor) as tx:
            for name, (old, new) in watermarks.items():
                mark = tx.session.get(IncidentWatermark, name)
                if (mark.value if mark is not None else 0) != old:
                    raise WatermarkMoved(f"watermark {name} moved past {old}: another process detected first")
                if mark is None:
                    tx.session.add(IncidentWatermark(name=name, value=new, updated_at=at))
                else:
                    mark.value, mark.updated_at = new, at
            opened, merged = [], []
            for spec in specs:
                if spec.once and _any_incident(tx.session, spec.client, spec.dedup_key):
                    continue
                found = _open_incident(tx.session, spec.client, spec.dedup_key)
                if found is None:
                    row = _new_incident(spec, at, tx.actor)
                    tx.session.add(row)
                    tx.session.flush()
                    body: dict[str, Any] = {"kind": spec.kind, "severity": spec.severity, "title": spec.title}
                    body |= {"dedup_key": spec.dedup_key, "hosts": list(row.hosts), "occurrences": row.occurrences}
                    _step(tx, row, "opened", body, at)
                    opened.append(row)
                else:
                    found.occurrences += spec.occurrences
                    found.last_seen_at = max(found.last_seen_at, at)
                    found.hosts = sorted(set(found.hosts) | set(spec.hosts))
                    _step(tx, found, "merged", {"occurrences": spec.occurrences, "hosts": list(spec.hosts)}, at)
                    merged.append(found)
            tx.session.flush()
            return DetectionResult(tuple(map(incident_record, opened)), tuple(map(incident_record, merged)))

    def alerts_after(self, after_id: int, *, settled_before: _dt.datetime, limit: int) -> list[tuple[int, AlertRecord]]:
        """Alerts stored after id ``after_id`` (oldest first, at most ``limit``), only those received before
        ``settled_before``: on PostgreSQL ids are handed out before commit, so a batch still committing may hold a
        smaller id than one already visible; reading a few seconds behind lets it land before the watermark
        passes it."""
        al = TelemetryAlert
        query = select(al).where(al.id > after_id, al.received_at < settled_before).order_by(al.id).limit(limit)
        with self._read() as session:
            return [(r.id, _alert_record(r)) for r in session.scalars(query)]

    def incident_watermarks(self) -> dict[str, int]:
        with self._read() as session:
            return {w.name: w.value for w in session.scalars(select(IncidentWatermark))}

    # ------------------------------------------------------------------------------------------- people

    def ack_incident(self, incident_id: int, *, by: str | None = None, at: _dt.datetime) -> IncidentRecord:
        with self._write(by) as tx:
            row = _require(tx.session, incident_id)
            if row.state != "open":
                raise IncidentStateError(
                    f"incident {incident_id} is {row.state}; only an open incident can be acknowledged",
                    hint=f"see 'sentryctl incidents show {incident_id}'",
                )
            row.state, row.acked_at, row.acked_by = "acked", at, tx.actor
            _step(tx, row, "acked", {"seconds_to_ack": round((at - row.opened_at).total_seconds(), 1)}, at)
            return incident_record(row)

    def resolve_incident(
        self, incident_id: int, *, by: str | None = None, note: str | None = None, at: _dt.datetime
    ) -> IncidentRecord:
        with self._write(by) as tx:
            row = _require(tx.session, incident_id)
            if row.state == "resolved":
                raise IncidentStateError(
                    f"incident {incident_id} is already resolved (by {row.resolved_by})",
                    hint="a new occurrence opens a new incident",
                )
            row.state, row.resolved_at, row.resolved_by, row.resolve_note = "resolved", at, tx.actor, note
            body: dict[str, Any] = {"seconds_to_resolve": round((at - row.opened_at).total_seconds(), 1)}
            if note:
                body["note"] = note
            _step(tx, row, "resolved", body, at)
            return incident_record(row)

    def record_incident_step(
        self,
        incident_id: int,
        step: str,
        detail: Mapping[str, Any],
        *,
        at: _dt.datetime,
        actor: str | None = None,
    ) -> None:
        """A step of the engine (``paged``, ``page_failed``, ``breach``, ...) on the timeline and in the chain."""
        with self._write(actor) as tx:
            _step(tx, _require(tx.session, incident_id), step, detail, at)

    # ------------------------------------------------------------------------------------------- reading

    def incident(self, incident_id: int) -> IncidentRecord:
        with self._read() as session:
            return incident_record(_require(session, incident_id))

    def incident_steps(self, incident_id: int) -> list[IncidentStepRecord]:
        query = select(IncidentStep).where(IncidentStep.incident_id == incident_id).order_by(IncidentStep.id)
        with self._read() as session:
            _require(session, incident_id)
            return [IncidentStepRecord(s.at, s.actor, s.step, dict(s.detail)) for s in session.scalars(query)]

    def incidents(
        self,
        client: str | None = None,
        states: Sequence[str] | None = None,
        *,
        opened_from: _dt.datetime | None = None,
        opened_before: _dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[IncidentRecord]:
        """Incidents, the newest first."""
        query = select(Incident).order_by(Incident.id.desc()).limit(limit)
        if client is not None:
            query = query.where(Incident.client == client)
        if states is not None:
            query = query.where(Incident.state.in_(list(states)))
        if opened_from is not None:
            query = query.where(Incident.opened_at >= opened_from)
        if opened_before is not None:
            query = query.where(Incident.opened_at < opened_before)
        with self._read() as session:
            return [incident_record(r) for r in session.scalars(query)]


def _check_spec(spec: IncidentSpec) -> None:
    if spec.kind not in INCIDENT_KINDS:
        raise LedgerError(f"incident kind {spec.kind!r} is not one of {', '.join(INCIDENT_KINDS)}")
    if spec.severity not in SEVERITIES:
        raise LedgerError(f"incident severity {spec.severity!r} is not one of {', '.join(SEVERITIES)}")
    if not spec.dedup_key or len(spec.dedup_key) > 255:
        raise LedgerError("an incident's dedup key must be 1 to 255 characters")
    if spec.occurrences < 1:
        raise LedgerError("an incident has at least one occurrence")


def _open_incident(session: Session, client: str, dedup_key: str) -> Incident | None:
    return session.scalars(
        select(Incident).where(
            Incident.client == client, Incident.dedup_key == dedup_key, Incident.resolved_at.is_(None)
        )
    ).first()


def _any_incident(session: Session, client: str, dedup_key: str) -> bool:
    query = select(Incident.id).where(Incident.client == client, Incident.dedup_key == dedup_key).limit(1)
    return session.execute(query).first() is not None


def _require(session: Session, incident_id: int) -> Incident:
    row = session.get(Incident, incident_id)
    if row is None:
        raise IncidentNotFound(f"no incident {incident_id}", hint="see 'sentryctl incidents list --state all'")
    return row


def _new_incident(spec: IncidentSpec, at: _dt.datetime, actor: str) -> Incident:
    return Incident(
        client=spec.client,
        tier=spec.tier,
        kind=spec.kind,
        severity=spec.severity,
        dedup_key=spec.dedup_key,
        title=spec.title,
        hosts=sorted(set(spec.hosts)),
        state="open",
        opened_at=at,
        opened_by=actor,
        last_seen_at=at,
        occurrences=spec.occurrences,
        due_at=spec.due_at,
        detail=json_object(spec.detail, "incident detail"),
    )


def _step(tx: Any, row: Incident, step: str, detail: Mapping[str, Any], at: _dt.datetime) -> None:
    body = json_object(detail, f"detail of incident step {step}")
    tx.session.add(IncidentStep(incident_id=row.id, at=at, actor=tx.actor, step=step, detail=body))
    tx.append(f"incident.{step}", row.client, f"incident/{row.id}", {**body, "at": at.isoformat()})


def incident_record(r: Incident) -> IncidentRecord:
    return IncidentRecord(
        id=r.id,
        client=r.client,
        tier=r.tier,
        kind=r.kind,
        severity=r.severity,
        dedup_key=r.dedup_key,
        title=r.title,
        hosts=tuple(r.hosts),
        state=r.state,
        opened_at=r.opened_at,
        opened_by=r.opened_by,
        last_seen_at=r.last_seen_at,
        occurrences=r.occurrences,
        due_at=r.due_at,
        acked_at=r.acked_at,
        acked_by=r.acked_by,
        resolved_at=r.resolved_at,
        resolved_by=r.resolved_by,
        resolve_note=r.resolve_note,
        detail=dict(r.detail),
    )
