"""Incidents over a real collector (``sentryctl collector serve`` over TLS, on SQLite and PostgreSQL): the
collector suite's fixtures, reused as they are."""

from __future__ import annotations

from ..collector.conftest import collector, db_url, pg_db_url

__all__ = ["collector", "db_url", "pg_db_url"]
