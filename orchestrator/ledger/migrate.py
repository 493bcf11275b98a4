"""Bringing a ledger database to the schema this sentryctl knows, with Alembic driven from code.

The migration scripts ship inside the package (``migrations/``), so an installed sentryctl needs no alembic.ini.
Opening a ledger checks its revision first with a plain read; only a database that is behind (or empty) takes the
write lock and upgrades, in one transaction, re-reading the revision under the lock so that two processes opening
a fresh database at once migrate it once. A revision this code does not know is a newer sentryctl's work and is
refused rather than guessed at.

To write revision 0002 against a scratch database::

    from alembic import command
    from orchestrator.ledger.migrate import alembic_config
    command.revision(alembic_config("sqlite:////tmp/scratch.db"), "add rollouts", autogenerate=True, rev_id="0002")

(after upgrading the scratch database to head), then edit the generated file into a hand-written one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import column, inspect, select, table
from sqlalchemy.engine import Connection, Engine

from . import engine as _engine
from .errors import LedgerError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Only one versions directory, so the separator never matters; naming it keeps Alembic from warning.
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the ledger ships at least one migration"
    return head


def current_revisions(conn: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(conn).get_current_heads())


def _stored_revisions(conn: Connection) -> tuple[str, ...]:
    """The revisions in Alembic's version table, read directly: the check on every open stays quiet and cheap
    (a MigrationContext logs its setup each time)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return ()
    return tuple(conn.execute(select(column("version_num")).select_from(table(VERSION_TABLE))).scalars())


def _check_known(revisions: tuple[str, ...], script: ScriptDirectory) -> None:
    for revision in revisions:
        try:
            known = script.get_revision(revision)
        except CommandError:
            known = None
        if known is None:
            raise LedgerError(
                f"ledger schema {revision} is newer than this sentryctl; upgrade sentryctl",
                hint=f"this sentryctl knows schemas up to {script.get_current_head()}",
            )


def upgrade(engine: Engine) -> None:
    """Upgrade the database behind ``engine`` to the newest revision, or refuse one from a newer sentryctl."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    with engine.connect() as conn:
        current = _stored_revisions(conn)
    _check_known(current, script)
    if current == (head,):
        return

    with _engine.writer(engine).connect() as conn, conn.begin():
        _engine.lock_for_write(conn)
        current = current_revisions(conn)
        _check_known(current, script)
        if current == (head,):
            return
        log.info("upgrading ledger schema from %s to %s", ",".join(current) or "empty", head)
        command.upgrade(alembic_config(connection=conn), "head")
