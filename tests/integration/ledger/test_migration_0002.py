"""A ledger written at schema 0001 opens with this sentryctl: upgraded through 0002 to the head in place, every row
and event intact, the chain still verifying, and the new tables ready."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import NullPool

from orchestrator.ledger import HostResult, Ledger
from orchestrator.ledger import engine as ledger_engine
from orchestrator.ledger.migrate import alembic_config, head_revision
from orchestrator.ledger.models import Base
from orchestrator.ledger.urls import resolve_url

Sql = Callable[..., list[Any]]
NEW_TABLES = {"rollouts", "rollout_hosts", "rollout_locks", "training_sessions"}


def migrate_to(url: str, home: Path, revision: str, *, down: bool = False) -> None:
    """Move the database to ``revision`` the way sentryctl migrates: one transaction holding the write lock."""
    engine = ledger_engine.create(resolve_url(url, home))
    try:
        with ledger_engine.writer(engine).connect() as conn, conn.begin():
            ledger_engine.lock_for_write(conn)
            config = alembic_config(connection=conn)
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


@pytest.fixture
def ledger_0001(ledger_url: str, home: Path) -> Iterator[Ledger]:
    """A database at 0001 and a Ledger on it that was not opened (opening would upgrade it). Writing clients,
    hosts, runs, releases and events only touches 0001's tables, so this is what 0001's sentryctl would write."""
    migrate_to(ledger_url, home, "0001")
    resolved = resolve_url(ledger_url, home)
    old = Ledger(ledger_engine.create(resolved), resolved, "tester@ci")
    try:
        yield old
    finally:
        old.close()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0001_data_survives_the_upgrade(
    ledger_0001: Ledger, ledger_url: str, home: Path, sql: Sql, caplog: pytest.LogCaptureFixture
) -> None:
    old = ledger_0001
    old.add_client("acme", "enterprise", {"window": "Sun 02:00-04:00 UTC"})
    old.sync_hosts("acme", [("web1", "10.0.0.1", 22), ("web2", "10.0.0.2", 22)])
    run = old.start_run("provision", "acme", {"playbook": "site.yml"})
    old.finish_run(run.uid, "succeeded", {"web1": HostResult("ok", 0), "web2": HostResult("changed", 0)})
    old.set_host_release(
        "acme", "web1", stack_version="3", release_version="1.4.2", release_track="hotfix", run_uid=run.uid
    )
    before = (old.clients(), old.hosts("acme"), old.runs(), old.host_releases("acme"), old.events())
    head = old.verify().head_hash
    assert sql("SELECT version_num FROM alembic_version") == [("0001",)]
    assert not tables(ledger_url) & NEW_TABLES

    caplog.set_level(logging.INFO, logger="orchestrator.ledger")
    with Ledger.open(ledger_url, home) as ledger:
        # Opening upgrades straight to the newest schema, whatever later migrations have added since 0002.
        assert f"upgrading ledger schema from 0001 to {head_revision()}" in caplog.text
        assert sql("SELECT version_num FROM alembic_version") == [(head_revision(),)]
        assert head_revision() >= "0002"
        assert tables(ledger_url) >= NEW_TABLES
        assert (
            ledger.clients(),
            ledger.hosts("acme"),
            ledger.runs(),
            ledger.host_releases("acme"),
            ledger.events(),
        ) == before
        report = ledger.verify()
        assert report.ok, report.problems
        assert report.head_hash == head

        # The new parts work on the upgraded database and continue the same chain.
        ledger.create_rollout(
            "ro-1",
            release_version="1.5.0",
            track="hotfix",
            plan={"waves": [["web1"], ["web2"]]},
            clients=["acme"],
            hosts=[("acme", "web1", 0, "pending", "1.5.0", "1.4.2"), ("acme", "web2", 1, "pending", "1.5.0", None)],
        )
        ledger.acquire_rollout_locks(["acme"], "ro-1", holder_host="ctl", holder_pid=1, is_stale=lambda _: False)
        ledger.schedule_training("acme", "2.0.0", trainer="Ana", scheduled_for=dt.date(2025, 3, 14))
        assert ledger.events()[len(before[4])].prev_hash == head
        assert ledger.verify().ok

    engine = sa.create_engine(ledger_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_0002_downgrades_to_0001_and_back(ledger_url: str, home: Path, sql: Sql) -> None:
    with Ledger.open(ledger_url, home) as ledger:
        ledger.add_client("acme", "enterprise", {})
    migrate_to(ledger_url, home, "0001", down=True)
    assert sql("SELECT version_num FROM alembic_version") == [("0001",)]
    assert not tables(ledger_url) & NEW_TABLES
    with Ledger.open(ledger_url, home) as ledger:
        assert [c.name for c in ledger.clients()] == ["acme"]
        assert ledger.rollouts() == []
        assert ledger.verify().ok
