"""The ledger API: every public write is one transaction that changes state and appends its events together.

A writing transaction takes the chain's write lock before anything else (see :mod:`.engine`), so the state change,
the events that describe it and the chain head they extend are decided by one writer at a time, and a failure at
any point rolls all of it back: a crash never leaves state without its event or an event without its state.
ORM objects never leave the API (this module and the mixins it is made of: :mod:`.rollouts`, :mod:`.locks`,
:mod:`.trainings`); callers get the frozen records of :mod:`.records`.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DatabaseError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, selectinload

from . import engine as _engine
from . import migrate, urls
from .audits import AuditsMixin
from .base import json_object as _json_object
from .base import utcnow as _utcnow
from .chain import GENESIS_HASH, ChainChecker, ChainRow, VerifyReport, canonical_json, event_hash, utc_stamp
from .errors import LedgerError
from .locks import RolloutLocksMixin
from .models import Client, Event, Host, HostRelease, Run, RunHost
from .records import (
    FINAL_RUN_STATUSES,
    TRACKS,
    ClientRecord,
    EventRecord,
    HostRecord,
    HostReleaseRecord,
    HostResult,
    HostSync,
    RunHostRecord,
    RunRecord,
)
from .rollouts import RolloutsMixin
from .telemetry import TelemetryMixin
from .trainings import TrainingMixin

log = logging.getLogger(__name__)

VERIFY_BATCH = 1000


def default_actor() -> str:
    """Who is acting: ``SENTRY_ACTOR`` when set (CI, a service account), else ``user@host``."""
    actor = os.environ.get("SENTRY_ACTOR")
    if actor:
        return actor
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        # A container user without a passwd entry still acts; record the uid rather than fail.
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class _Tx:
    """One writing transaction: the session, who acts, one timestamp for everything written, and the chain head."""

    def __init__(self, session: Session, actor: str) -> None:
        self.session = session
        self.actor = actor
        self.now = _utcnow()
        self._head: tuple[int, str] | None = None

    def append(self, kind: str, client: str | None, subject: str | None, payload: Mapping[str, Any]) -> Event:
        if self._head is None:
            last = self.session.execute(select(Event.seq, Event.hash).order_by(Event.seq.desc()).limit(1)).first()
            self._head = (last.seq, last.hash) if last else (0, GENESIS_HASH)
        seq, prev_hash = self._head[0] + 1, self._head[1]
        body = _json_object(payload, f"payload of {kind}")
        at = utc_stamp(self.now)
        digest = event_hash(
            prev_hash, seq=seq, at=at, actor=self.actor, kind=kind, client=client, subject=subject, payload=body
        )
        row = Event(
            seq=seq,
            at=at,
            actor=self.actor,
            kind=kind,
            client=client,
            subject=subject,
            payload=canonical_json(body),
            prev_hash=prev_hash,
            hash=digest,
        )
        self.session.add(row)
        self._head = (seq, digest)
        return row


class Ledger(RolloutsMixin, RolloutLocksMixin, TrainingMixin, AuditsMixin, TelemetryMixin):
    """The durable record. Open with :meth:`open`; use as a context manager or call :meth:`close`.

    Clients, hosts, runs, releases and events are here; rollouts (:mod:`.rollouts`), rollout locks
    (:mod:`.locks`), training (:mod:`.trainings`) and audits (:mod:`.audits`) are mixed in, and write through
    the same ``_write``."""

    def __init__(self, engine: Engine, url: URL, actor: str) -> None:
        self._engine = engine
        self._writer = _engine.writer(engine)
        self._url = url
        self.actor = actor

    # ----------------------------------------------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, url: str | None, home: Path, *, actor: str | None = None, create: bool = True) -> Ledger:
        """Open the ledger at ``url`` (None: ``<home>/ledger.db``) and upgrade its schema to this code's head.

        ``create=False`` refuses a database that holds no ledger yet (the CLI's default for a URL someone
        typed: a typo must not start a new, empty ledger)."""
        resolved = urls.resolve_url(url, home)
        if resolved.get_backend_name() == "sqlite" and resolved.database:
            _engine.sqlite_file(Path(resolved.database), urls.display(resolved), create=create)
            cls._ensure_directory(Path(resolved.database))
            _engine.new_sqlite_file(Path(resolved.database))
        engine = _engine.create(resolved)
        ledger = cls(engine, resolved, actor or default_actor())
        try:
            with ledger._guard("open", any_error=True):
                if not create:
                    _engine.require_ledger(engine, urls.display(resolved))
                migrate.upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        log.debug("ledger open at %s", ledger.url)
        return ledger

    @staticmethod
    def _ensure_directory(path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the ledger directory {path.parent}: {exc.strerror}",
                hint="pass a writable --home or a ledger URL",
            ) from exc

    @property
    def url(self) -> str:
        """The database URL with its password masked: safe to log and show."""
        return urls.display(self._url)

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------- transactions

    @contextmanager
    def _guard(self, doing: str, *, any_error: bool = False) -> Iterator[None]:
        """Turn failures of the connection or the database itself (unreachable, bad credentials, locked too long,
        not a database) into one clean LedgerError. Errors in our SQL (integrity, programming) stay loud as bugs,
        except with ``any_error``: while opening, any of them means this URL or database cannot be used."""
        try:
            yield
        except DBAPIError as exc:
            infrastructure = isinstance(exc, OperationalError | InterfaceError) or type(exc) is DatabaseError
            if not (infrastructure or any_error):
                raise
            sqlite = self._url.get_backend_name() == "sqlite"
            raise LedgerError(
                f"cannot {doing} the ledger at {self.url}: {self._reason(exc)}",
                hint=(
                    "check that the file is a sentryctl ledger in a writable directory and no other process holds it"
                    if sqlite
                    else "check that PostgreSQL runs and the URL's host, port, user, password and database are right"
                ),
            ) from None

    def _reason(self, exc: DBAPIError) -> str:
        """The driver's first line: enough to act on, and scrubbed in case it echoes the password."""
        lines = str(exc.orig).strip().splitlines()
        return urls.scrub(lines[0], self._url) if lines else type(exc.orig).__name__

    @contextmanager
    def _write(self, actor: str | None) -> Iterator[_Tx]:
        with self._guard("write"), Session(self._writer, expire_on_commit=False) as session, session.begin():
            _engine.lock_for_write(session.connection())
            yield _Tx(session, actor or self.actor)

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._guard("read"), Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    # ----------------------------------------------------------------------------------------------- clients

    @staticmethod
    def _live_client(session: Session, name: str) -> Client | None:
        return session.scalars(
            select(Client).where(Client.name == name, Client.removed_at.is_(None)).options(selectinload(Client.hosts))
        ).first()

    @staticmethod
    def _require_client(session: Session, name: str) -> Client:
        client = Ledger._live_client(session, name)
        if client is None:
            raise LedgerError(f"client {name!r} is not in the ledger", hint="add it first (onboard the client)")
        return client

    def add_client(
        self, name: str, tier: str, meta: Mapping[str, Any] | None = None, *, actor: str | None = None
    ) -> ClientRecord:
        if not name or not tier:
            raise LedgerError("a client needs a name and a tier")
        body = _json_object(meta or {}, f"meta of client {name}")
        with self._write(actor) as tx:
            if self._live_client(tx.session, name) is not None:
                raise LedgerError(f"client {name!r} is already in the ledger", hint="remove it first to start over")
            client = Client(name=name, tier=tier, created_at=tx.now, meta=body)
            tx.session.add(client)
            tx.session.flush()
            tx.append("client.created", name, None, {"tier": tier, "meta": body})
            return _client_record(client, [])

    def remove_client(self, name: str, *, actor: str | None = None) -> ClientRecord:
        """Mark the client and its live hosts removed. Rows stay for history; the name becomes free again."""
        with self._write(actor) as tx:
            client = self._require_client(tx.session, name)
            hosts = [h for h in client.hosts if h.removed_at is None]
            for host in hosts:
                host.removed_at = tx.now
            client.removed_at = tx.now
            tx.append("client.removed", name, None, {"hosts": [h.name for h in hosts]})
            return _client_record(client, [])

    def client(self, name: str) -> ClientRecord | None:
        """The live client called ``name``, with its live hosts."""
        with self._read() as session:
            client = self._live_client(session, name)
            return None if client is None else _client_record(client, _live(client.hosts))

    def clients(self, include_removed: bool = False) -> list[ClientRecord]:
        query = select(Client).options(selectinload(Client.hosts)).order_by(Client.name, Client.id)
        if not include_removed:
            query = query.where(Client.removed_at.is_(None))
        with self._read() as session:
            return [_client_record(c, _live(c.hosts)) for c in session.scalars(query)]

    # ----------------------------------------------------------------------------------------------- hosts

    def sync_hosts(self, client: str, hosts: Sequence[tuple[str, str, int]], *, actor: str | None = None) -> HostSync:
        """Make the client's live hosts exactly ``hosts`` (name, address, port): add the new ones, update changed
        addresses or ports, mark the missing ones removed. One event per change; nothing when nothing changed."""
        wanted: dict[str, tuple[str, int]] = {}
        for name, address, port in hosts:
            if name in wanted:
                raise LedgerError(f"host {name!r} is listed twice for client {client!r}")
            if not name or not address or not 0 < port < 65536:
                raise LedgerError(f"host {name!r} of client {client!r} needs a name, an address and a valid port")
            wanted[name] = (address, port)

        added: list[str] = []
        updated: list[str] = []
        removed: list[str] = []
        with self._write(actor) as tx:
            record = self._require_client(tx.session, client)
            live = {h.name: h for h in record.hosts if h.removed_at is None}
            for name, host in sorted(live.items()):
                if name not in wanted:
                    host.removed_at = tx.now
                    removed.append(name)
                    tx.append("host.removed", client, name, {"address": host.address, "port": host.port})
            for name, (address, port) in sorted(wanted.items()):
                existing = live.get(name)
                if existing is None:
                    tx.session.add(Host(client_id=record.id, name=name, address=address, port=port, added_at=tx.now))
                    added.append(name)
                    tx.append("host.added", client, name, {"address": address, "port": port})
                elif (existing.address, existing.port) != (address, port):
                    before = {"address": existing.address, "port": existing.port}
                    existing.address, existing.port = address, port
                    updated.append(name)
                    tx.append("host.updated", client, name, {"address": address, "port": port, "previous": before})
            tx.session.flush()
        return HostSync(tuple(added), tuple(updated), tuple(removed))

    def hosts(self, client: str, include_removed: bool = False) -> list[HostRecord]:
        """Hosts of the live client ``client``; with ``include_removed``, also the ones it had before."""
        with self._read() as session:
            record = self._require_client(session, client)
            rows = record.hosts if include_removed else _live(record.hosts)
            return [_host_record(h) for h in rows]

    # ----------------------------------------------------------------------------------------------- runs

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
        body = _json_object(summary or {}, f"summary of the {kind} run")
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
            return _run_record(run, client, [])

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
            host: (result.status, result.rc, _json_object(result.detail, f"detail of host {host}"))
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
            return _run_record(run, client, run.hosts)

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
            return [_run_record(r, r.client.name if r.client else None, r.hosts) for r in session.scalars(query)]

    # ----------------------------------------------------------------------------------------------- releases

    def set_host_release(
        self,
        client: str,
        host: str,
        *,
        stack_version: str,
        release_version: str,
        release_track: str,
        run_uid: str | None,
        actor: str | None = None,
    ) -> HostReleaseRecord:
        """Record what ``host`` runs now. A new release version pushes the old one into
        ``previous_release_version`` (what a rollback goes back to). Setting what is already recorded changes
        nothing and appends no event."""
        if release_track not in TRACKS:
            raise LedgerError(
                f"unknown release track {release_track!r}", hint=f"use one of {', '.join(sorted(TRACKS))}"
            )
        with self._write(actor) as tx:
            owner = self._require_client(tx.session, client)
            row = next((h for h in owner.hosts if h.name == host and h.removed_at is None), None)
            if row is None:
                raise LedgerError(f"host {host!r} of client {client!r} is not in the ledger", hint="sync hosts first")
            run = None
            if run_uid is not None:
                run = tx.session.scalars(select(Run).where(Run.uid == run_uid)).first()
                if run is None:
                    raise LedgerError(f"run {run_uid!r} is not in the ledger")
            current = tx.session.get(HostRelease, row.id)
            if current is not None and (
                current.stack_version,
                current.release_version,
                current.release_track,
            ) == (stack_version, release_version, release_track):
                return _release_record(client, host, current, current.run.uid if current.run else None)
            if current is None:
                current = HostRelease(host_id=row.id, previous_release_version=None)
                tx.session.add(current)
            elif current.release_version != release_version:
                current.previous_release_version = current.release_version
            current.stack_version = stack_version
            current.release_version = release_version
            current.release_track = release_track
            current.updated_at = tx.now
            current.run_id = run.id if run else None
            tx.append(
                "host.release_set",
                client,
                host,
                {
                    "stack_version": stack_version,
                    "release_version": release_version,
                    "release_track": release_track,
                    "previous_release_version": current.previous_release_version,
                    "run": run_uid,
                },
            )
            tx.session.flush()
            return _release_record(client, host, current, run_uid)

    def host_releases(self, client: str) -> list[HostReleaseRecord]:
        """What each live host of ``client`` runs, by host name; hosts with no recorded release are left out."""
        with self._read() as session:
            owner = self._require_client(session, client)
            rows = session.execute(
                select(Host.name, HostRelease, Run.uid)
                .join(HostRelease, HostRelease.host_id == Host.id)
                .outerjoin(Run, Run.id == HostRelease.run_id)
                .where(Host.client_id == owner.id, Host.removed_at.is_(None))
                .order_by(Host.name)
            ).all()
            return [_release_record(client, name, release, run_uid) for name, release, run_uid in rows]

    # ----------------------------------------------------------------------------------------------- events

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
            return _event_record(row)

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
            rows = [_event_record(e) for e in session.scalars(query)]
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


def _live(hosts: Sequence[Host]) -> list[Host]:
    return [h for h in hosts if h.removed_at is None]


def _host_record(host: Host) -> HostRecord:
    return HostRecord(host.name, host.address, host.port, host.added_at, host.removed_at)


def _client_record(client: Client, hosts: Sequence[Host]) -> ClientRecord:
    return ClientRecord(
        id=client.id,
        name=client.name,
        tier=client.tier,
        meta=dict(client.meta),
        created_at=client.created_at,
        removed_at=client.removed_at,
        hosts=tuple(_host_record(h) for h in hosts),
    )


def _run_record(run: Run, client: str | None, hosts: Sequence[RunHost]) -> RunRecord:
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


def _release_record(client: str, host: str, release: HostRelease, run_uid: str | None) -> HostReleaseRecord:
    return HostReleaseRecord(
        client=client,
        host=host,
        stack_version=release.stack_version,
        release_version=release.release_version,
        release_track=release.release_track,
        previous_release_version=release.previous_release_version,
        updated_at=release.updated_at,
        run_uid=run_uid,
    )


def _event_record(event: Event) -> EventRecord:
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
