"""Events in the ledger: appending one on its own, reading the log in chain order, and verifying the chain."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from .base import LedgerMixin
from .chain import ChainChecker, ChainRow, VerifyReport
from .errors import LedgerError
from .models import Event
from .records import EventRecord

log = logging.getLogger(__name__)

VERIFY_BATCH = 1000


class EventsMixin(LedgerMixin):
    """The event log; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def append_event(
        self,
        kind: str,
        client: str | None,
        subject: str | None,
        payload: Mapping[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> EventRecord:
        """Append one event on its own. Other modules record what has no table yet through this."""
        if not kind:
            raise LedgerError("an event needs a kind")
        with self._write(actor) as tx:
            row = tx.append(kind, client, subject, payload or {})
            tx.session.flush()
            return event_record(row)

    def events(
        self, client: str | None = None, limit: int | None = None, since_seq: int | None = None
    ) -> list[EventRecord]:
        """Events in chain order. With ``since_seq``: the first ``limit`` after it (paging forward, tailing).
        Without: the last ``limit`` (the newest), still oldest first."""
        query = select(Event)
        if client is not None:
            query = query.where(Event.client == client)
        if since_seq is not None:
            query = query.where(Event.seq > since_seq)
        if limit is not None and since_seq is None:
            query = query.order_by(Event.seq.desc()).limit(limit)
        else:
            query = query.order_by(Event.seq).limit(limit)
        with self._read() as session:
            rows = [event_record(e) for e in session.scalars(query)]
        return sorted(rows, key=lambda e: e.seq)

    def verify(self) -> VerifyReport:
        """Recompute the whole chain in one read transaction and list every problem, the first broken seq first."""
        checker = ChainChecker()
        query = select(
            Event.seq,
            Event.at,
            Event.actor,
            Event.kind,
            Event.client,
            Event.subject,
            Event.payload,
            Event.prev_hash,
            Event.hash,
        ).order_by(Event.seq)
        with self._read() as session:
            for row in session.execute(query.execution_options(yield_per=VERIFY_BATCH)):
                checker.feed(ChainRow(*row))
        report = checker.report()
        if not report.ok:
            log.warning("ledger chain broken at event %s: %d problem(s)", report.first_broken, len(report.problems))
        return report


def event_record(event: Event) -> EventRecord:
    return EventRecord(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        kind=event.kind,
        client=event.client,
        subject=event.subject,
        payload=json.loads(event.payload),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )
