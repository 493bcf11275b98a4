"""The ledger's tables as typed SQLAlchemy models. Private to this package: the API hands out records.

The schema itself is owned by the migrations in ``migrations/versions``; these models must describe the same
tables (a test compares them). Live rows are the ones whose ``removed_at`` is NULL: removing a client or host
keeps its row for history, and names are unique only among live rows, so a name can be used again.

Rollouts, their locks and training sessions name clients by name, not by row: a client removed and added again
(a tier change does that) keeps its training sign-offs and its rollout history.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from .chain import canonical_json

# Named constraints let later migrations alter them, SQLite batch migrations included.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LIVE = text("removed_at IS NULL")


class UTCDateTime(TypeDecorator[_dt.datetime]):
    """Aware UTC datetimes on both databases: SQLite stores no zone, so values are normalized on the way in and
    marked UTC on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: _dt.datetime | None, dialect: Dialect) -> _dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("ledger timestamps must be timezone-aware")
        value = value.astimezone(_dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: _dt.datetime | None, dialect: Dialect) -> _dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)


class JSONText(TypeDecorator[dict[str, Any]]):
    """A JSON object kept as canonical text: readable with any SQL client and identical on both databases."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else canonical_json(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any] | None:
        return None if value is None else dict(json.loads(value))


class JSONList(TypeDecorator[list[Any]]):
    """A JSON array kept as canonical text, like :class:`JSONText`."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else canonical_json(list(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> list[Any] | None:
        return None if value is None else list(json.loads(value))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {_dt.datetime: UTCDateTime(), dict[str, Any]: JSONText()}


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (Index("uq_clients_name_live", "name", unique=True, sqlite_where=LIVE, postgresql_where=LIVE),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    tier: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[_dt.datetime]
    removed_at: Mapped[_dt.datetime | None]
    meta: Mapped[dict[str, Any]]

    hosts: Mapped[list[Host]] = relationship(back_populates="client", order_by="Host.name")


class Host(Base):
    __tablename__ = "hosts"
    __table_args__ = (
        Index(
            "uq_hosts_client_id_name_live",
            "client_id",
            "name",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255))
    port: Mapped[int]
    added_at: Mapped[_dt.datetime]
    removed_at: Mapped[_dt.datetime | None]

    client: Mapped[Client] = relationship(back_populates="hosts")
    release: Mapped[HostRelease | None] = relationship(back_populates="host")


class HostRelease(Base):
    """What each host runs now; the history of changes is in the events."""

    __tablename__ = "host_releases"

    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), primary_key=True)
    stack_version: Mapped[str] = mapped_column(String(64))
    release_version: Mapped[str] = mapped_column(String(64))
    release_track: Mapped[str] = mapped_column(String(16))
    previous_release_version: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[_dt.datetime]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))

    host: Mapped[Host] = relationship(back_populates="release")
    run: Mapped[Run | None] = relationship()


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[_dt.datetime]
    finished_at: Mapped[_dt.datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[dict[str, Any]]

    client: Mapped[Client | None] = relationship()
    hosts: Mapped[list[RunHost]] = relationship(back_populates="run", order_by="RunHost.host")


class RunHost(Base):
    __tablename__ = "run_hosts"
    __table_args__ = (UniqueConstraint("run_id", "host"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    host: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    rc: Mapped[int | None]
    detail: Mapped[dict[str, Any]]

    run: Mapped[Run] = relationship(back_populates="hosts")


class Event(Base):
    """One link of the append-only chain; see :mod:`.chain` for what ``hash`` covers."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str | None] = mapped_column(String(100), index=True)
    subject: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Rollout(Base):
    """One release going to a set of clients; ``clients`` is a JSON list of names, ``plan`` the planner's output."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(128), unique=True)
    release_version: Mapped[str] = mapped_column(String(64))
    track: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32), index=True)
    plan: Mapped[dict[str, Any]]
    clients: Mapped[list[str]] = mapped_column(JSONList())
    emergency_reason: Mapped[str | None] = mapped_column(Text)
    # A rollback rollout points at the rollout that caused it.
    parent_uid: Mapped[str | None] = mapped_column(String(128), ForeignKey("rollouts.uid"), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[_dt.datetime]
    updated_at: Mapped[_dt.datetime]
    finished_at: Mapped[_dt.datetime | None]
    detail: Mapped[dict[str, Any]]

    hosts: Mapped[list[RolloutHost]] = relationship(
        back_populates="rollout", order_by=lambda: [RolloutHost.wave, RolloutHost.client, RolloutHost.host]
    )


class RolloutHost(Base):
    __tablename__ = "rollout_hosts"
    __table_args__ = (UniqueConstraint("rollout_id", "client", "host"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"))
    client: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    wave: Mapped[int]
    status: Mapped[str] = mapped_column(String(32))
    target_version: Mapped[str] = mapped_column(String(64))
    previous_version: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]
    updated_at: Mapped[_dt.datetime]

    rollout: Mapped[Rollout] = relationship(back_populates="hosts")


class RolloutLock(Base):
    """One rollout at a time per client: the row exists while a rollout holds the client."""

    __tablename__ = "rollout_locks"

    client: Mapped[str] = mapped_column(String(100), primary_key=True)
    rollout_uid: Mapped[str] = mapped_column(String(128), ForeignKey("rollouts.uid"), index=True)
    holder_host: Mapped[str] = mapped_column(String(255))
    holder_pid: Mapped[int]
    acquired_at: Mapped[_dt.datetime]
    heartbeat_at: Mapped[_dt.datetime]


class TrainingSession(Base):
    """On-site training of a client's staff for a release (or a module covering several); ``scheduled_for`` is a
    calendar date as ``YYYY-MM-DD`` text, ``attendees`` a JSON list of names."""

    __tablename__ = "training_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(100), index=True)
    release_version: Mapped[str] = mapped_column(String(64))
    module: Mapped[str | None] = mapped_column(String(128))
    scheduled_for: Mapped[str | None] = mapped_column(String(10))
    trainer: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    signed_off_at: Mapped[_dt.datetime | None]
    signed_off_by: Mapped[str | None] = mapped_column(String(255))
    attendees: Mapped[list[str]] = mapped_column(JSONList())
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[_dt.datetime]


class Audit(Base):
    """One audit of a client's hosts: who ran it, what it found, and the sha256 of its evidence bundle's signed
    manifest (which covers every file of the bundle). ``hosts`` maps host name to its status."""

    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(128), unique=True)
    client: Mapped[str] = mapped_column(String(100), index=True)
    auditor: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[_dt.datetime]
    finished_at: Mapped[_dt.datetime]
    result: Mapped[str] = mapped_column(String(16))
    hosts: Mapped[dict[str, Any]]
    bundle_path: Mapped[str] = mapped_column(Text)
    bundle_sha256: Mapped[str] = mapped_column(String(64))


class CollectorToken(Base):
    """A client's collector bearer token, by its sha256 only: the token itself lives in the client's vault.
    A client has at most one live (unrevoked) token; revoked rows stay for history."""

    __tablename__ = "collector_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(100), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[_dt.datetime]
    revoked_at: Mapped[_dt.datetime | None]


class TelemetryAlert(Base):
    """One alert as an agent reported it. (client, host, boot, seq) is the idempotency key; ``host_time`` is the
    host's clock, ``received_at`` the collector's (the one that orders and ages records); ``raw`` the record."""

    __tablename__ = "telemetry_alerts"
    __table_args__ = (
        UniqueConstraint("client", "host", "boot", "seq"),
        Index("ix_telemetry_alerts_client_received_at", "client", "received_at"),
        Index("ix_telemetry_alerts_client_host_received_at", "client", "host", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    boot: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    host_time: Mapped[_dt.datetime]
    received_at: Mapped[_dt.datetime]
    rule: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int | None]
    action: Mapped[str | None] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(64))
    rules_version: Mapped[str | None] = mapped_column(String(64))
    # How long the agent banned the address, from the record, so analytics counts bans by duration without
    # reading the JSON of every alert (migration 0006).
    ban_seconds: Mapped[int | None] = mapped_column(BigInteger)
    raw: Mapped[dict[str, Any]]


class TelemetryHeartbeat(Base):
    """One heartbeat as an agent reported it; keyed and timed like :class:`TelemetryAlert`."""

    __tablename__ = "telemetry_heartbeats"
    __table_args__ = (
        UniqueConstraint("client", "host", "boot", "seq"),
        Index("ix_telemetry_heartbeats_client_received_at", "client", "received_at"),
        Index("ix_telemetry_heartbeats_client_host_received_at", "client", "host", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    boot: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    host_time: Mapped[_dt.datetime]
    received_at: Mapped[_dt.datetime]
    event: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(64))
    rules_digest: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str | None] = mapped_column(String(32))
    uptime_seconds: Mapped[float | None] = mapped_column(Float)
    interval_seconds: Mapped[float | None] = mapped_column(Float)
    spool_records: Mapped[int | None]
    spool_bytes: Mapped[int | None] = mapped_column(BigInteger)
    dropped_alerts: Mapped[int | None]
    dropped_heartbeats: Mapped[int | None]
    quarantined: Mapped[int | None]
    bans_active: Mapped[int | None]
    # The sums of the firewall's drop counters the heartbeat reported (``firewall``), so that analytics adds
    # them up in SQL without reading the JSON of every heartbeat (migration 0006).
    fw_packets: Mapped[int | None] = mapped_column(BigInteger)
    fw_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # The agent's active defence pack and what detection costs with it (migration 0007): the fleet view and the
    # push gates read them per host without parsing the JSON.
    pack_version: Mapped[str | None] = mapped_column(String(64))
    pack_digest: Mapped[str | None] = mapped_column(String(64))
    pack_status: Mapped[str | None] = mapped_column(String(16))
    detect_us_per_line: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[dict[str, Any]]


OPEN_INCIDENT = text("resolved_at IS NULL")


class Incident(Base):
    """One problem that needs a person: opened by detection, acknowledged and resolved by people.

    ``dedup_key`` is unique among the client's unresolved incidents (a partial unique index): while one is open,
    every further occurrence is merged into it (``occurrences``, ``last_seen_at``), across collector processes too;
    after it is resolved the same key opens a new incident. ``due_at`` is the response deadline fixed at opening
    (the tier's target, counted from the next opening of its support hours)."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index(
            "uq_incidents_client_dedup_key_open",
            "client",
            "dedup_key",
            unique=True,
            sqlite_where=OPEN_INCIDENT,
            postgresql_where=OPEN_INCIDENT,
        ),
        Index("ix_incidents_client_opened_at", "client", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(100))
    tier: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    hosts: Mapped[list[str]] = mapped_column(JSONList())
    state: Mapped[str] = mapped_column(String(16), index=True)
    opened_at: Mapped[_dt.datetime]
    opened_by: Mapped[str] = mapped_column(String(255))
    last_seen_at: Mapped[_dt.datetime]
    occurrences: Mapped[int] = mapped_column(BigInteger)
    due_at: Mapped[_dt.datetime]
    acked_at: Mapped[_dt.datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[_dt.datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    resolve_note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]


class IncidentStep(Base):
    """One step of an incident's timeline (opened, merged, paged, escalated, acked, resolved, breach)."""

    __tablename__ = "incident_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[_dt.datetime]
    actor: Mapped[str] = mapped_column(String(255))
    step: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]


class IncidentWatermark(Base):
    """How far detection has read a source (the last alert id, the last event seq): kept in the database so the
    collector stays stateless and a second collector process continues where the first stopped."""

    __tablename__ = "incident_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[_dt.datetime]


class IncidentEscalation(Base):
    """One ladder step an incident reached: a page to deliver (``pending`` until ``sent``; ``cancelled`` when the
    incident was acknowledged or resolved first) or the recorded breach (``breach``). Unique per (incident, step):
    two engines reaching the same step create it once."""

    __tablename__ = "incident_escalations"
    __table_args__ = (
        UniqueConstraint("incident_id", "step_index"),
        Index("ix_incident_escalations_state_next_try_at", "state", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    client: Mapped[str] = mapped_column(String(100))
    step_index: Mapped[int]
    target: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[_dt.datetime]
    attempts: Mapped[int]
    next_try_at: Mapped[_dt.datetime]
    sent_at: Mapped[_dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class PortalToken(Base):
    """A read-only customer portal token of one client, by its sha256 only: the token is shown once, when made.
    A client may hold several (one per person); revoked rows stay for history."""

    __tablename__ = "portal_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(100), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[_dt.datetime]
    revoked_at: Mapped[_dt.datetime | None]
