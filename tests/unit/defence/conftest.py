"""The defence tests' fixtures: the ledger on both backends (SQLite in tmp_path, PostgreSQL from
SENTRY_TEST_PG_URL, required with SENTRY_REQUIRE_PG=1), exactly as the ledger's own tests get it."""

from __future__ import annotations

from tests.integration.ledger.conftest import home, ledger, ledger_url, pg_admin  # noqa: F401 - fixtures
