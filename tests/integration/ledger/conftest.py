"""Every ledger test runs on both backends: SQLite in tmp_path, and PostgreSQL from SENTRY_TEST_PG_URL.

Without that variable the PostgreSQL half is skipped, unless SENTRY_REQUIRE_PG=1 (set it where PostgreSQL must be
tested: `SENTRY_TEST_PG_URL=$(bash scripts/postgres | tail -1) SENTRY_REQUIRE_PG=1 pytest ...`). Each PostgreSQL
test gets a schema of its own, put first on the search_path through the URL, and dropped afterwards: tests never
see each other's rows, and the role needs no right to create databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from orchestrator.ledger import Ledger

PG_ENV = "SENTRY_TEST_PG_URL"
REQUIRE_ENV = "SENTRY_REQUIRE_PG"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {PG_ENV} is not set; start one with: bash scripts/postgres")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (bash scripts/postgres prints one)")
    engine = sa.create_engine(url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    admin: sa.Engine = request.getfixturevalue("pg_admin")
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def ledger(ledger_url: str, home: Path) -> Iterator[Ledger]:
    with Ledger.open(ledger_url, home, actor="tester@ci") as opened:
        yield opened


@pytest.fixture
def sql(ledger_url: str) -> Iterator[Callable[..., list[Any]]]:
    """Raw SQL on the ledger's database, behind the API's back: how the tests tamper with it."""
    engine = sa.create_engine(ledger_url, poolclass=NullPool)

    def run(statement: str, **params: Any) -> list[Any]:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return list(result) if result.returns_rows else []

    yield run
    engine.dispose()
