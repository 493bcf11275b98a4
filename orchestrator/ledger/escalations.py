"""Escalation steps and page deliveries of incidents in the ledger.

The engine computes which ladder steps are due (pure, :mod:`orchestrator.incidents.policy`); this module records
each step once (unique per incident and step, decided under the chain's write lock), and tracks each page until it
is delivered: ``pending`` with ``attempts`` and ``next_try_at``, claimed by one engine at a time (a claim moves
``next_try_at`` a lease ahead, so a collector that dies mid-delivery leaves the page to the next one), ``sent``
once delivered, ``cancelled`` when the incident was acknowledged or resolved before it went out. A page is never
dropped: a failed delivery stays pending with a later ``next_try_at``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .base import LedgerMixin
from .incidents import _require, _step
from .models import Incident, IncidentEscalation

PAGE_STATES = ("pending", "sent", "cancelled", "breach")


@dataclass(frozen=True)
class DueStep:
    """A ladder step the engine found due: page ``target`` or (``target`` None) record the breach."""

    incident_id: int
    step_index: int
    target: str | None


@dataclass(frozen=True)
class PageRecord:
    id: int
    incident_id: int
    client: str
    step_index: int
    target: str | None
    state: str
    created_at: _dt.datetime
    attempts: int
    next_try_at: _dt.datetime
    sent_at: _dt.datetime | None
    last_error: str | None
    title: str = ""
    severity: str = ""


class EscalationsMixin(LedgerMixin):
    """Escalation steps and pages; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def record_due_steps(
        self, steps: Sequence[DueStep], *, at: _dt.datetime, actor: str | None = None
    ) -> list[PageRecord]:
        """Record the steps not recorded yet, of incidents still open (not acknowledged, not resolved); the new
        ones are returned. A page step is queued (``pending``, due now); a breach step is recorded as done."""
        created = []
        with self._write(actor) as tx:
            for s in steps:
                incident = _require(tx.session, s.incident_id)
                if incident.state != "open" or _find(tx.session, s.incident_id, s.step_index) is not None:
                    continue
                row = IncidentEscalation(
                    incident_id=s.incident_id,
                    client=incident.client,
                    step_index=s.step_index,
                    target=s.target,
                    state="pending" if s.target else "breach",
                    created_at=at,
                    attempts=0,
                    next_try_at=at,
                )
                tx.session.add(row)
                tx.session.flush()
                if s.target is None:
                    late = round((at - incident.due_at).total_seconds(), 1)
                    _step(tx, incident, "breach", {"step": s.step_index, "seconds_past_due": late}, at)
                else:
                    name = "page_queued" if s.step_index == 0 else "escalated"
                    _step(tx, incident, name, {"step": s.step_index, "target": s.target}, at)
                created.append(_page(row, incident))
        return created

    def claim_pages(
        self, *, at: _dt.datetime, lease: _dt.timedelta, limit: int = 50, actor: str | None = None
    ) -> list[PageRecord]:
        """Pending pages due by ``at``, claimed for ``lease`` (their ``next_try_at`` moves ahead and ``attempts``
        counts this try). Pages of incidents acknowledged or resolved meanwhile are cancelled instead."""
        claimed = []
        query = (
            select(IncidentEscalation, Incident)
            .join(Incident, Incident.id == IncidentEscalation.incident_id)
            .where(IncidentEscalation.state == "pending", IncidentEscalation.next_try_at <= at)
            .order_by(IncidentEscalation.next_try_at, IncidentEscalation.id)
            .limit(limit)
        )
        with self._read() as session:
            if session.execute(query.with_only_columns(IncidentEscalation.id)).first() is None:
                return []  # nothing due: no write (the engine asks every few seconds)
        with self._write(actor) as tx:
            for page, incident in tx.session.execute(query).all():
                if incident.state != "open":
                    page.state = "cancelled"
                    _step(tx, incident, "page_cancelled", {"step": page.step_index, "why": incident.state}, at)
                    continue
                page.attempts += 1
                page.next_try_at = at + lease
                claimed.append(_page(page, incident))
        return claimed

    def page_sent(self, page_id: int, *, at: _dt.datetime, actor: str | None = None) -> None:
        with self._write(actor) as tx:
            page = _require_page(tx.session, page_id)
            page.state, page.sent_at, page.last_error = "sent", at, None
            incident = _require(tx.session, page.incident_id)
            body = {"step": page.step_index, "target": page.target, "attempts": page.attempts}
            _step(tx, incident, "paged", body, at)

    def page_failed(
        self, page_id: int, error: str, *, at: _dt.datetime, retry_at: _dt.datetime, actor: str | None = None
    ) -> None:
        """The delivery failed: the page stays pending and is tried again at ``retry_at``."""
        with self._write(actor) as tx:
            page = _require_page(tx.session, page_id)
            page.last_error, page.next_try_at = error[:500], retry_at
            incident = _require(tx.session, page.incident_id)
            body = {"step": page.step_index, "target": page.target, "attempts": page.attempts, "error": error[:200]}
            _step(tx, incident, "page_failed", {**body, "retry_at": retry_at.isoformat()}, at)

    def incident_pages(self, incident_ids: Sequence[int] | None = None) -> list[PageRecord]:
        query = (
            select(IncidentEscalation, Incident)
            .join(Incident, Incident.id == IncidentEscalation.incident_id)
            .order_by(IncidentEscalation.id)
        )
        if incident_ids is not None:
            query = query.where(IncidentEscalation.incident_id.in_(list(incident_ids)))
        with self._read() as session:
            return [_page(p, i) for p, i in session.execute(query).all()]


def _find(session: Session, incident_id: int, step_index: int) -> IncidentEscalation | None:
    return session.scalars(
        select(IncidentEscalation).where(
            IncidentEscalation.incident_id == incident_id, IncidentEscalation.step_index == step_index
        )
    ).first()


def _require_page(session: Session, page_id: int) -> IncidentEscalation:
    page = session.get(IncidentEscalation, page_id)
    if page is None:
        raise LookupError(f"no page {page_id}")  # only the engine calls with ids it was given: a bug
    return page


def _page(p: IncidentEscalation, incident: Incident) -> PageRecord:
    return PageRecord(
        id=p.id,
        incident_id=p.incident_id,
        client=p.client,
        step_index=p.step_index,
        target=p.target,
        state=p.state,
        created_at=p.created_at,
        attempts=p.attempts,
        next_try_at=p.next_try_at,
        sent_at=p.sent_at,
        last_error=p.last_error,
        title=incident.title,
        severity=incident.severity,
    )
