"""Ledger URLs: which database a URL means, and how it is shown without its password."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ledger import LedgerError, mask_url
from orchestrator.ledger.urls import display, resolve_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://sentry:s3cret@db:5432/ledger", "postgresql+psycopg://sentry:***@db:5432/ledger"),
        ("postgresql://sentry:p@ss/w:rd@db/ledger", "postgresql://sentry:***@db/ledger"),
        (
            "postgresql://db/ledger?user=x&password=s3cret&sslmode=require",
            "postgresql://db/ledger?user=x&password=***&sslmode=require",
        ),
        ("postgresql://sentry@db/ledger", "postgresql://sentry@db/ledger"),
        ("sqlite:////var/lib/sentry/ledger.db", "sqlite:////var/lib/sentry/ledger.db"),
        ("not a url at all :secret@", "not a url at all :secret@"),
        ("postgresql+psycopg://sentry:s3cret@db:notaport/x", "postgresql+psycopg://sentry:***@db:notaport/x"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_none_means_sqlite_under_home(tmp_path: Path) -> None:
    url = resolve_url(None, tmp_path)
    assert url.drivername == "sqlite+pysqlite"
    assert url.database == str(tmp_path / "ledger.db")


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:pw@h/db", "postgres://u:pw@h/db", "postgresql+psycopg://u:pw@h/db"],
)
def test_postgresql_always_uses_psycopg(url: str, tmp_path: Path) -> None:
    resolved = resolve_url(url, tmp_path)
    assert resolved.drivername == "postgresql+psycopg"
    assert display(resolved) == "postgresql+psycopg://u:***@h/db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:hunter2@h/db", "unsupported ledger database 'mysql'"),
        ("postgresql+psycopg2://u:hunter2@h/db", "unsupported PostgreSQL driver 'psycopg2'"),
        ("sqlite://", "needs a database file"),
        ("sqlite:///:memory:", "needs a database file"),
        ("postgresql://u:hunter2@h", "names no database"),
        ("::hunter2::", "cannot parse the ledger URL"),
        ("postgresql+psycopg://u:hunter2@h:port/db", "cannot parse the ledger URL"),
    ],
)
def test_bad_urls_are_refused_without_their_password(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=message) as info:
        resolve_url(url, tmp_path)
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)
