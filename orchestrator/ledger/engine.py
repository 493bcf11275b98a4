"""Engines for the two supported databases, and the lock every writing transaction takes first.

Every write appends to the event chain, and appending means "read the head, write head + 1". Two writers that
both read the same head would fork the chain, so writers are serialized:

* SQLite: writing transactions start with ``BEGIN IMMEDIATE``, which takes the database's write lock before the
  head is read; a second writer waits (``busy_timeout``) instead of failing at commit. pysqlite would otherwise
  emit its own deferred ``BEGIN`` lazily, so it is told to stay out of transaction control (``isolation_level =
  None``) and the ``begin`` event emits ours, the recipe in SQLAlchemy's SQLite dialect documentation
  ("Enabling Non-Legacy SQLite Transactional Modes"). Readers keep a plain deferred ``BEGIN`` and, thanks to WAL,
  never wait for writers.
* PostgreSQL: writing transactions first take a transaction-level advisory lock; it is released by COMMIT or
  ROLLBACK, so a crashed writer can never leave it held. Under READ COMMITTED every statement after the lock sees
  the previous writer's committed rows.

A connection becomes a writer through the :data:`WRITE_OPTION` execution option (see :func:`writer`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine

from .errors import LedgerError

log = logging.getLogger(__name__)

WRITE_OPTION = "sentry_ledger_write"
BUSY_TIMEOUT_S = 30
PG_CONNECT_TIMEOUT_S = 5
# One fixed key for the whole database: writers are few and short, so one lock is simpler than finer ones.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"sentryctl.ledger.chain").digest()[:8], "big", signed=True)


NO_LEDGER_HINT = "create one with 'sentryctl ledger init', or check --db-url / SENTRY_DB_URL"


def sqlite_file(path: Path, shown: str, *, create: bool) -> None:
    """Before the first connection (which would create an empty file): refuse a missing ledger file unless
    creating one was asked for; a new file is made 0600, an existing one tightened to it."""
    if not path.exists():
        if not create:
            raise LedgerError(f"no ledger exists at {shown}", hint=NO_LEDGER_HINT)
        return
    if path.is_file() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def new_sqlite_file(path: Path) -> None:
    """Create the SQLite file 0600 ourselves, so it is never readable by others even for an instant."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return  # it exists (or another process just made it): sqlite_file already checked it
    except OSError as exc:
        raise LedgerError(f"cannot create the ledger file {path}: {exc.strerror}", hint=NO_LEDGER_HINT) from exc


def require_ledger(engine: Engine, shown: str) -> None:
    """An existing database that holds no ledger (an empty file, a database that was never initialised)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            raise LedgerError(f"no ledger exists at {shown} (the database holds no ledger)", hint=NO_LEDGER_HINT)


def create(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return _postgresql_engine(url)


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) whose connections begin writing transactions."""
    return engine.execution_options(**{WRITE_OPTION: True})


def lock_for_write(conn: Connection) -> None:
    """Take the write lock, as the first statement of a writing transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    # SQLite already holds it: the transaction began with BEGIN IMMEDIATE.


def _ensure_wal(cursor: Any) -> None:
    """WAL lets readers run while a writer holds the lock; the setting is stored in the file, so only the first
    connection to a new database changes it. That change needs an exclusive lock and SQLite may answer it with
    "database is locked" at once instead of waiting on busy_timeout (two processes opening a new ledger
    together), so it is retried here within the same time budget."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA foreign_keys = ON")
            _ensure_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

    return engine


def _postgresql_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {"application_name": "sentryctl"}
    if "connect_timeout" not in url.query:
        # libpq waits for the OS by default (minutes for a silently dropped packet); a CLI should say so sooner.
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True)
