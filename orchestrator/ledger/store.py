"""The ledger API: every public write is one transaction that changes state and appends its events together.

A writing transaction takes the chain's write lock before anything else (see :mod:`.engine`), so the state change,
the events that describe it and the chain head they extend are decided by one writer at a time, and a failure at
any point rolls all of it back: a crash never leaves state without its event or an event without its state.
ORM objects never leave the API (this module and the mixins it is made of, one module per subject: :mod:`.clients`,
:mod:`.hosts`, :mod:`.runs`, :mod:`.host_releases`, :mod:`.events`, :mod:`.rollouts`, :mod:`.locks`,
:mod:`.trainings`, :mod:`.audits`, :mod:`.telemetry`, :mod:`.incidents`, :mod:`.escalations`,
:mod:`.analytics`, :mod:`.portal`, :mod:`.defence`); callers get the frozen records of :mod:`.records`.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DatabaseError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from . import engine as _engine
from . import migrate, urls
from .analytics import AnalyticsMixin
from .audits import AuditsMixin
from .base import json_object as _json_object
from .base import utcnow as _utcnow
from .chain import GENESIS_HASH, canonical_json, event_hash, utc_stamp
from .clients import ClientsMixin
from .defence import DefenceMixin
from .defence_pushes import DefencePushesMixin
from .defence_signals import DefenceSignalsMixin
from .errors import LedgerError
from .escalations import EscalationsMixin
from .events import EventsMixin
from .host_releases import HostReleasesMixin
from .hosts import HostsMixin
from .incidents import IncidentsMixin
from .locks import RolloutLocksMixin
from .models import Event
from .portal import PortalMixin
from .rollouts import RolloutsMixin
from .runs import RunsMixin
from .telemetry import TelemetryMixin
from .trainings import TrainingMixin

log = logging.getLogger(__name__)


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


class Ledger(
    ClientsMixin,
    HostsMixin,
    RunsMixin,
    HostReleasesMixin,
    EventsMixin,
    RolloutsMixin,
    RolloutLocksMixin,
    TrainingMixin,
    AuditsMixin,
    TelemetryMixin,
    IncidentsMixin,
    EscalationsMixin,
    AnalyticsMixin,
    PortalMixin,
    DefenceMixin,
    DefencePushesMixin,
    DefenceSignalsMixin,
):
    """The durable record. Open with :meth:`open`; use as a context manager or call :meth:`close`.

    The engine and its transactions are here; each subject is a mixin of its own module (clients, hosts, runs,
    host releases, events, rollouts, rollout locks, training, audits, telemetry, incidents, escalations, portal,
    defence packs), and they all write through the same ``_write``."""

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
