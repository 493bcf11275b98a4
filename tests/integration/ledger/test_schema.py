"""Opening a ledger migrates it: from empty, not again when current, never when the schema is newer."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import NullPool

from orchestrator.ledger import Ledger, LedgerError
from orchestrator.ledger.migrate import head_revision
from orchestrator.ledger.models import Base

TABLES = {
    "clients",
    "hosts",
    "host_releases",
    "runs",
    "run_hosts",
    "events",
    "rollouts",
    "rollout_hosts",
    "rollout_locks",
    "training_sessions",
    "alembic_version",
}

Sql = Callable[..., list[Any]]


def test_open_migrates_an_empty_database_to_head(ledger_url: str, home: Path, sql: Sql) -> None:
    with Ledger.open(ledger_url, home):
        pass
    engine = sa.create_engine(ledger_url, poolclass=NullPool)
    try:
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            # The models and the hand-written migrations must describe the same schema.
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()
    assert sql("SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_open_twice_is_a_no_op(ledger_url: str, home: Path, sql: Sql, caplog: pytest.LogCaptureFixture) -> None:
    with Ledger.open(ledger_url, home) as first:
        first.add_client("acme", "essentials", {})
    caplog.set_level(logging.INFO, logger="orchestrator.ledger")
    with Ledger.open(ledger_url, home) as second:
        assert [c.name for c in second.clients()] == ["acme"]
        assert second.verify().ok
    assert "upgrading ledger schema" not in caplog.text
    assert sql("SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_a_newer_schema_is_refused(ledger_url: str, home: Path, sql: Sql) -> None:
    with Ledger.open(ledger_url, home):
        pass
    sql("UPDATE alembic_version SET version_num = '0999'")
    with pytest.raises(LedgerError, match=r"ledger schema 0999 is newer than this sentryctl; upgrade sentryctl"):
        Ledger.open(ledger_url, home)
    # Refused means untouched.
    assert sql("SELECT version_num FROM alembic_version") == [("0999",)]


def test_default_is_sqlite_under_home_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    home = tmp_path / "state"
    with Ledger.open(None, home) as ledger:
        assert ledger.dialect == "sqlite"
        assert ledger.url == f"sqlite+pysqlite:///{home / 'ledger.db'}"
        with ledger._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert (home / "ledger.db").is_file()


def test_foreign_keys_are_enforced(ledger: Ledger) -> None:
    # Through the ledger's own engine: SQLite enforces foreign keys only on connections that ask for it.
    with pytest.raises(sa.exc.IntegrityError), ledger._engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO hosts (client_id, name, address, port, added_at) VALUES (4242, 'h', 'a', 22, :now)"),
            {"now": datetime.datetime.now(datetime.UTC)},
        )
