"""Telemetry in the ledger: collector tokens (their sha256 only), and the alerts and heartbeats agents report.

Token changes are rare and go through the chain like every other change (``collector.token_registered``,
``collector.token_revoked``). Records are many and are not chained: each batch is one transaction of its own,
inserted with ON CONFLICT DO NOTHING on the idempotency key (client, host, boot, seq), so a replayed batch is
acknowledged and stored once, and two collector processes on one PostgreSQL racing on the same batch store each
record once (the unique index decides; neither waits for the chain's lock). How the new rows are counted without
RETURNING on PostgreSQL: :func:`_insert_new`. On SQLite the batch begins with
``BEGIN IMMEDIATE`` (the ledger's writer engine): one writer at a time, never a lock upgrade that fails halfway.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from .base import LedgerMixin
from .errors import LedgerError
from .models import Client, CollectorToken, Host, TelemetryAlert, TelemetryHeartbeat

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.engine import Engine

RECORD_TYPES = ("alert", "heartbeat")


@dataclass(frozen=True)
class IncomingRecord:
    """One validated record of a batch: the key, the host's time, the typed columns of its table, the raw JSON."""

    type: str
    boot: str
    seq: int
    host_time: _dt.datetime
    columns: Mapping[str, Any]
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class BatchResult:
    stored: int
    duplicates: int
    stored_by_type: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HeartbeatRecord:
    client: str
    host: str
    boot: str
    seq: int
    host_time: _dt.datetime
    received_at: _dt.datetime
    event: str | None
    version: str | None
    rules_digest: str | None
    status: str | None
    interval_seconds: float | None
    spool_records: int | None
    spool_bytes: int | None
    quarantined: int | None
    bans_active: int | None
    # The agent's active defence pack (None: release rules only, or an agent from before packs) and the detector's
    # mean cost per log line with it.
    pack_version: str | None = None
    pack_digest: str | None = None
    pack_status: str | None = None
    detect_us_per_line: float | None = None


@dataclass(frozen=True)
class AlertRecord:
    client: str
    host: str
    boot: str
    seq: int
    host_time: _dt.datetime
    received_at: _dt.datetime
    rule: str | None
    source: str | None
    ip: str | None
    count: int | None
    action: str | None
    severity: str
    raw: Mapping[str, Any]


class HostNotAllowed(LedgerError):
    """Raised when a batch names a host that is not a live host of the token's client."""


class TelemetryMixin(LedgerMixin):
    """Collector tokens and telemetry records; part of :class:`~orchestrator.ledger.store.Ledger`."""

    if TYPE_CHECKING:
        _engine: Engine
        _writer: Engine

        def _guard(self, doing: str, *, any_error: bool = False) -> AbstractContextManager[None]: ...

    # ------------------------------------------------------------------------------------------- tokens

    def register_collector_token(self, client: str, sha256: str, *, actor: str | None = None) -> bool:
        """Make ``sha256`` the client's one live token (revoking any other). False when it already was."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise LedgerError("a collector token hash must be a sha256 in lower-case hex")
        with self._write(actor) as tx:
            row = tx.session.scalars(select(CollectorToken).where(CollectorToken.sha256 == sha256)).first()
            if row is not None and row.client != client:
                raise LedgerError("that collector token is already registered to another client")
            if row is not None and row.revoked_at is None:
                return False
            if row is not None:
                raise LedgerError(
                    f"that collector token of client {client!r} was revoked and cannot be used again",
                    hint=f"set a new one: sentryctl client secret set collector_token --client {client}",
                )
            revoked = self._revoke(tx.session, client, tx.now)
            tx.session.add(CollectorToken(client=client, sha256=sha256, created_at=tx.now))
            tx.append("collector.token_registered", client, None, {"sha256_prefix": sha256[:12], "revoked": revoked})
            return True

    def revoke_collector_tokens(self, client: str, *, actor: str | None = None) -> int:
        """Revoke every live token of ``client``; its agents get 401 from the next request on."""
        with self._write(actor) as tx:
            revoked = self._revoke(tx.session, client, tx.now)
            if revoked:
                tx.append("collector.token_revoked", client, None, {"revoked": revoked})
            return revoked

    @staticmethod
    def _revoke(session: Any, client: str, now: _dt.datetime) -> int:
        result = session.execute(
            update(CollectorToken)
            .where(CollectorToken.client == client, CollectorToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount or 0)

    def collector_client(self, sha256: str) -> str | None:
        """The client whose live token has this hash, or None (unknown or revoked)."""
        with self._read() as session:
            return session.scalar(
                select(CollectorToken.client).where(
                    CollectorToken.sha256 == sha256, CollectorToken.revoked_at.is_(None)
                )
            )

    # ------------------------------------------------------------------------------------------- records

    def store_batch(
        self, client: str, host: str, records: Sequence[IncomingRecord], received_at: _dt.datetime
    ) -> BatchResult:
        """Store one batch in one transaction; records already stored count as duplicates. Raises
        :class:`HostNotAllowed` (nothing stored) when ``host`` is not a live host of ``client``."""
        engine = self._writer if self._engine.dialect.name == "sqlite" else self._engine
        with self._guard("store telemetry in"), engine.begin() as conn:
            if not is_live_host(conn, client, host):
                raise HostNotAllowed(f"host {host!r} is not a host of client {client!r}")
            by_type: dict[str, int] = {}
            for kind, model in (("alert", TelemetryAlert), ("heartbeat", TelemetryHeartbeat)):
                rows = [
                    {
                        **dict(r.columns),
                        "client": client,
                        "host": host,
                        "boot": r.boot,
                        "seq": r.seq,
                        "host_time": r.host_time,
                        "received_at": received_at,
                        "raw": dict(r.raw),
                    }
                    for r in records
                    if r.type == kind
                ]
                if not rows:
                    continue
                by_type[kind] = _insert_new(conn, model, rows, client, host, received_at)
        stored = sum(by_type.values())
        return BatchResult(stored=stored, duplicates=len(records) - stored, stored_by_type=by_type)

    def latest_heartbeats(self, client: str | None = None) -> list[HeartbeatRecord]:
        """The newest heartbeat (by receive time) of every host that ever sent one."""
        hb = TelemetryHeartbeat
        newest = select(hb.client, hb.host, func.max(hb.id).label("id")).group_by(hb.client, hb.host)
        if client is not None:
            newest = newest.where(hb.client == client)
        sub = newest.subquery()
        query = select(hb).join(sub, hb.id == sub.c.id).order_by(hb.client, hb.host)
        with self._read() as session:
            return [_heartbeat_record(r) for r in session.scalars(query)]

    def alert_counts(self, since: _dt.datetime, client: str | None = None) -> dict[tuple[str, str], int]:
        """Alerts received since ``since`` per (client, host)."""
        al = TelemetryAlert
        query = select(al.client, al.host, func.count()).where(al.received_at >= since).group_by(al.client, al.host)
        if client is not None:
            query = query.where(al.client == client)
        with self._read() as session:
            return {(c, h): int(n) for c, h, n in session.execute(query)}

    def telemetry_alerts(
        self, client: str, *, host: str | None = None, since: _dt.datetime | None = None, limit: int = 1000
    ) -> list[AlertRecord]:
        """Alerts of one client (one host), oldest first by receive time, at most the newest ``limit``."""
        al = TelemetryAlert
        query = select(al).where(al.client == client).order_by(al.received_at.desc(), al.id.desc()).limit(limit)
        if host is not None:
            query = query.where(al.host == host)
        if since is not None:
            query = query.where(al.received_at >= since)
        with self._read() as session:
            rows = [_alert_record(r) for r in session.scalars(query)]
        return rows[::-1]

    def prune_telemetry(self, before: _dt.datetime) -> dict[str, int]:
        """Delete records received before ``before``; one transaction."""
        engine = self._writer if self._engine.dialect.name == "sqlite" else self._engine
        with self._guard("prune telemetry in"), engine.begin() as conn:
            alerts = conn.execute(delete(TelemetryAlert).where(TelemetryAlert.received_at < before)).rowcount
            beats = conn.execute(delete(TelemetryHeartbeat).where(TelemetryHeartbeat.received_at < before)).rowcount
        return {"alert": int(alerts or 0), "heartbeat": int(beats or 0)}


def is_live_host(conn: Connection, client: str, host: str) -> bool:
    """Whether ``host`` is a live host of the live client ``client`` (what the collector asks of every agent)."""
    found = conn.execute(
        select(Host.id)
        .join(Client, and_(Client.id == Host.client_id))
        .where(Client.name == client, Client.removed_at.is_(None), Host.name == host, Host.removed_at.is_(None))
        .limit(1)
    ).first()
    return found is not None


def _insert_new(
    conn: Connection,
    model: type[TelemetryAlert] | type[TelemetryHeartbeat],
    rows: list[Any],
    client: str,
    host: str,
    received_at: _dt.datetime,
) -> int:
    """Insert the rows whose key is new (ON CONFLICT DO NOTHING: the unique key decides, across processes too);
    the count of rows this transaction inserted, exact on both databases.

    SQLite: RETURNING (cheap there). PostgreSQL: RETURNING made ingest cost about 3.5x a plain batch insert (every
    row's id comes back through insertmanyvalues), so the rows go in as one plain executemany and are then counted:
    the rows of this batch carry its ``received_at`` (indexed with client and host) and, among those, the ones this
    transaction wrote have its transaction id as ``xmin``. A concurrent collector's rows have another ``xmin``; a
    duplicate key inserts no row at all. Measured in bench/ingest.py (README, Telemetry: the collector)."""
    if conn.dialect.name == "sqlite":
        stmt = (
            sqlite_insert(model)
            .on_conflict_do_nothing(index_elements=["client", "host", "boot", "seq"])
            .returning(model.id)
        )
        return len(conn.execute(stmt, rows).all())
    conn.execute(pg_insert(model).on_conflict_do_nothing(index_elements=["client", "host", "boot", "seq"]), rows)
    mine = literal_column("xmin") == text("(txid_current() % 4294967296)::text::xid")
    counted = conn.execute(
        select(func.count())
        .select_from(model)
        .where(model.client == client, model.host == host, model.received_at == received_at, mine)
    ).scalar_one()
    return int(counted)


def _heartbeat_record(r: TelemetryHeartbeat) -> HeartbeatRecord:
    return HeartbeatRecord(
        client=r.client,
        host=r.host,
        boot=r.boot,
        seq=r.seq,
        host_time=r.host_time,
        received_at=r.received_at,
        event=r.event,
        version=r.version,
        rules_digest=r.rules_digest,
        status=r.status,
        interval_seconds=r.interval_seconds,
        spool_records=r.spool_records,
        spool_bytes=r.spool_bytes,
        quarantined=r.quarantined,
        bans_active=r.bans_active,
        pack_version=r.pack_version,
        pack_digest=r.pack_digest,
        pack_status=r.pack_status,
        detect_us_per_line=r.detect_us_per_line,
    )


def _alert_record(r: TelemetryAlert) -> AlertRecord:
    return AlertRecord(
        client=r.client,
        host=r.host,
        boot=r.boot,
        seq=r.seq,
        host_time=r.host_time,
        received_at=r.received_at,
        rule=r.rule,
        source=r.source,
        ip=r.ip,
        count=r.count,
        action=r.action,
        severity=r.severity,
        raw=dict(r.raw),
    )
