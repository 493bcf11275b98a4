"""Alembic environment of the ledger. sentryctl runs it itself (:mod:`orchestrator.ledger.migrate`) and hands
over a connection that already holds the write lock inside an open transaction, so the whole upgrade commits or
rolls back as one; there is no alembic.ini.

For writing a new revision, :func:`orchestrator.ledger.migrate.alembic_config` with a URL makes this script open
its own connection (see that module's docstring).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection, make_url

from orchestrator.ledger import engine
from orchestrator.ledger.models import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite can only alter tables by copying them; batch mode does that in later revisions.
        render_as_batch=connection.dialect.name == "sqlite",
        # With the BEGIN hook of orchestrator.ledger.engine, SQLite DDL is transactional too.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("the ledger migrations need a connection or a sqlalchemy.url")
    with engine.create(make_url(url)).connect() as own_connection:
        run(own_connection)
        own_connection.commit()
