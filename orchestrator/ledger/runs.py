"""Runs in the ledger: each playbook run (who, what kind, for which client), how it ended and how each host fared."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .base import LedgerMixin, json_object
from .errors import LedgerError
from .models import Client, Run, RunHost
from .records import FINAL_RUN_STATUSES, HostResult, RunHostRecord, RunRecord


class RunsMixin(LedgerMixin):
    """Runs and their host results; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def start_run(
        self,
        kind: str,
        client: str | None,
        summary: Mapping[str, Any] | None = None,
        uid: str | None = None,
        *,
        actor: str | None = None,
    ) -> RunRecord:
        """Record that a run began. ``uid`` is the runner's run id when there is one; otherwise one is made."""
        if not kind:
            raise LedgerError("a run needs a kind")
        body = json_object(summary or {}, f"summary of the {kind} run")
        with self._write(actor) as tx:
            run_uid = uid or f"{tx.now.strftime('%Y%m%dT%H%M%SZ')}-{kind}-{secrets.token_hex(3)}"
            if tx.session.scalar(select(Run.id).where(Run.uid == run_uid)) is not None:
                raise LedgerError(f"run {run_uid!r} is already in the ledger")
            owner = self._require_client(tx.session, client) if client is not None else None
            run = Run(
                uid=run_uid,
                kind=kind,
                client_id=owner.id if owner else None,
                actor=tx.actor,
                started_at=tx.now,
                status="running",
                summary=body,
            )
            tx.session.add(run)
            tx.session.flush()
            tx.append("run.started", client, run_uid, {"kind": kind, "summary": body})
            return run_record(run, client, [])

    def finish_run(
        self,
        uid: str,
        status: str,
        host_results: Mapping[str, HostResult] | None = None,
        *,
        actor: str | None = None,
    ) -> RunRecord:
        """Record how a run ended (succeeded, failed, cancelled) and how each host fared."""
        if status not in FINAL_RUN_STATUSES:
            raise LedgerError(
                f"a run cannot finish as {status!r}", hint=f"use one of {', '.join(sorted(FINAL_RUN_STATUSES))}"
            )
        results = {
            host: (result.status, result.rc, json_object(result.detail, f"detail of host {host}"))
            for host, result in (host_results or {}).items()
        }
        with self._write(actor) as tx:
            run = tx.session.scalars(
                select(Run).where(Run.uid == uid).options(selectinload(Run.client), selectinload(Run.hosts))
            ).first()
            if run is None:
                raise LedgerError(f"run {uid!r} is not in the ledger")
            if run.status != "running":
                raise LedgerError(f"run {uid!r} already finished ({run.status})")
            run.status = status
            run.finished_at = tx.now
            for host, (host_status, rc, detail) in sorted(results.items()):
                run.hosts.append(RunHost(host=host, status=host_status, rc=rc, detail=detail))
            client = run.client.name if run.client else None
            tx.append(
                "run.finished",
                client,
                uid,
                {"status": status, "hosts": {h: {"status": s, "rc": rc} for h, (s, rc, _) in sorted(results.items())}},
            )
            tx.session.flush()
            return run_record(run, client, run.hosts)

    def runs(self, client: str | None = None, kind: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The newest runs first, with their host results; ``client`` matches every incarnation of that name."""
        query = (
            select(Run).options(selectinload(Run.client), selectinload(Run.hosts)).order_by(Run.id.desc()).limit(limit)
        )
        if client is not None:
            query = query.join(Run.client).where(Client.name == client)
        if kind is not None:
            query = query.where(Run.kind == kind)
        with self._read() as session:
            return [run_record(r, r.client.name if r.client else None, r.hosts) for r in session.scalars(query)]


def run_record(run: Run, client: str | None, hosts: Sequence[RunHost]) -> RunRecord:
    return RunRecord(
        uid=run.uid,
        kind=run.kind,
        client=client,
        actor=run.actor,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status,
        summary=dict(run.summary),
        hosts=tuple(RunHostRecord(h.host, h.status, h.rc, dict(h.detail)) for h in hosts),
    )
