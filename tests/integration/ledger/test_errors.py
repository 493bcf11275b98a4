"""Failures to reach the database are one clean line that names the URL without its password."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.ledger import Ledger, LedgerError

SECRET = "Tr0ub4dor-and-3"


def test_an_unreachable_postgresql_is_a_clean_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql+psycopg://sentry:{SECRET}@127.0.0.1:1/sentry_test"
    with pytest.raises(LedgerError) as info:
        Ledger.open(url, tmp_path)
    message = str(info.value)
    assert message.startswith("cannot open the ledger at postgresql+psycopg://sentry:***@127.0.0.1:1/sentry_test: ")
    assert "PostgreSQL runs" in message  # the hint names the fix
    assert "\n" not in message
    assert SECRET not in message
    assert SECRET not in caplog.text
    # The driver's exception (with its SQL and parameters) is not chained into tracebacks.
    assert info.value.__cause__ is None


def test_a_wrong_password_is_a_clean_error(pg_admin: sa.Engine, tmp_path: Path) -> None:
    url = pg_admin.url.set(password=SECRET).render_as_string(hide_password=False)
    with pytest.raises(LedgerError, match="password authentication failed") as info:
        Ledger.open(url, tmp_path)
    assert SECRET not in str(info.value)
    assert ":***@" in str(info.value)


def test_an_unusable_sqlite_path_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(LedgerError, match="cannot create the ledger directory"):
        Ledger.open(f"sqlite:///{tmp_path / 'file' / 'sub' / 'ledger.db'}", tmp_path)
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(LedgerError, match=r"cannot open the ledger at sqlite\+pysqlite:///.*dir\.db: unable to open"):
        Ledger.open(f"sqlite:///{tmp_path / 'dir.db'}", tmp_path)


def test_a_file_that_is_not_a_database_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "ledger.db").write_text("this is not SQLite" * 100)
    with pytest.raises(LedgerError, match="file is not a database"):
        Ledger.open(None, tmp_path)


def test_a_bad_connection_option_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match='invalid connection option "nosuch"') as info:
        Ledger.open(f"postgresql+psycopg://sentry:{SECRET}@127.0.0.1:1/db?nosuch=1", tmp_path)
    assert SECRET not in str(info.value)
