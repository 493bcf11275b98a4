"""Audits in the ledger: one row per audit (who, when, result per host, bundle hash) and an ``audit.recorded``
event in the chain, so the bundle's hash is also covered by the hash chain."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping

from sqlalchemy import select

from .base import LedgerMixin, required
from .errors import LedgerError
from .models import Audit
from .records import AUDIT_RESULTS, AuditRecord

SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")


class AuditsMixin(LedgerMixin):
    """Audit records; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def record_audit(
        self,
        uid: str,
        client: str,
        *,
        auditor: str,
        started_at: _dt.datetime,
        result: str,
        hosts: Mapping[str, str],
        bundle_path: str,
        bundle_sha256: str,
        actor: str | None = None,
    ) -> AuditRecord:
        required(uid, "an audit id")
        required(auditor, "the auditor's name")
        if result not in AUDIT_RESULTS:
            raise LedgerError(f"audit result {result!r} is not one of {', '.join(sorted(AUDIT_RESULTS))}")
        if not SHA256_RE.match(bundle_sha256):
            raise LedgerError(f"bundle hash {bundle_sha256!r} is not a sha256 in lower-case hex")
        bad = sorted(h for h, s in hosts.items() if s not in AUDIT_RESULTS)
        if bad:
            raise LedgerError(f"audit host statuses must be one of {', '.join(sorted(AUDIT_RESULTS))}: {bad}")
        with self._write(actor) as tx:
            self._require_client(tx.session, client)
            row = Audit(
                uid=uid,
                client=client,
                auditor=auditor.strip(),
                started_at=started_at,
                finished_at=tx.now,
                result=result,
                hosts=dict(sorted(hosts.items())),
                bundle_path=bundle_path,
                bundle_sha256=bundle_sha256,
            )
            tx.session.add(row)
            tx.append(
                "audit.recorded",
                client,
                uid,
                {"auditor": row.auditor, "result": result, "hosts": row.hosts, "bundle_sha256": bundle_sha256},
            )
            tx.session.flush()
            return audit_record(row)

    def audits(self, client: str | None = None, limit: int = 20) -> list[AuditRecord]:
        """The newest audits first (of one client, or of all)."""
        query = select(Audit).order_by(Audit.id.desc()).limit(limit)
        if client is not None:
            query = query.where(Audit.client == client)
        with self._read() as session:
            return [audit_record(row) for row in session.scalars(query)]


def audit_record(row: Audit) -> AuditRecord:
    return AuditRecord(
        uid=row.uid,
        client=row.client,
        auditor=row.auditor,
        started_at=row.started_at,
        finished_at=row.finished_at,
        result=row.result,
        hosts=dict(row.hosts),
        bundle_path=row.bundle_path,
        bundle_sha256=row.bundle_sha256,
    )
