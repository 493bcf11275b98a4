"""Incidents over a real collector (``sentryctl collector serve`` over TLS, on SQLite and PostgreSQL): the
collector suite's fixtures, reused as they are, plus that collector with its own incident engine off, for tests
that drive detection passes themselves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.collector import config

from ..collector.conftest import Collector, collector, db_url, free_port, pg_db_url, prepare

__all__ = ["collector", "db_url", "pg_db_url", "quiet_collector", "set_config"]


def set_config(running: Collector, **values: object) -> None:
    conf = running.home / "collector" / config.CONFIG_FILE
    conf.write_text(json.dumps({**json.loads(conf.read_text()), **values}))


@pytest.fixture
def quiet_collector(db_url: str, tmp_path: Path) -> Iterator[Collector]:
    running = prepare(tmp_path / "home", db_url, free_port())
    set_config(running, incidents_tick_seconds=0)
    running.start()
    try:
        yield running
    finally:
        running.stop()
