"""Initial ledger: clients, hosts, host releases, runs and their hosts, the hash-chained event log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out by hand rather than from the models, so that this revision stays what it was when later ones change
the models. Constraint names follow the models' naming convention.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("removed_at IS NULL")


def _timestamp(name: str, nullable: bool = False) -> sa.Column[_dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("tier", sa.String(50), nullable=False),
        _timestamp("created_at"),
        _timestamp("removed_at", nullable=True),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_clients"),
    )
    # Unique among live clients only: a removed client keeps its row and its name can be used again.
    op.create_index("uq_clients_name_live", "clients", ["name"], unique=True, sqlite_where=LIVE, postgresql_where=LIVE)

    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        _timestamp("added_at"),
        _timestamp("removed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_hosts"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_hosts_client_id_clients"),
    )
    op.create_index("ix_hosts_client_id", "hosts", ["client_id"])
    op.create_index(
        "uq_hosts_client_id_name_live",
        "hosts",
        ["client_id", "name"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_runs_client_id_clients"),
        sa.UniqueConstraint("uid", name="uq_runs_uid"),
    )
    op.create_index("ix_runs_kind", "runs", ["kind"])
    op.create_index("ix_runs_client_id", "runs", ["client_id"])

    op.create_table(
        "run_hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rc", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_hosts"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_hosts_run_id_runs"),
        sa.UniqueConstraint("run_id", "host", name="uq_run_hosts_run_id_host"),
    )

    op.create_table(
        "host_releases",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("stack_version", sa.String(64), nullable=False),
        sa.Column("release_version", sa.String(64), nullable=False),
        sa.Column("release_track", sa.String(16), nullable=False),
        sa.Column("previous_release_version", sa.String(64), nullable=True),
        _timestamp("updated_at"),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("host_id", name="pk_host_releases"),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name="fk_host_releases_host_id_hosts"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_host_releases_run_id_runs"),
    )

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        # Text, not a timestamp type: the hashed bytes must be the stored bytes on every database.
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("client", sa.String(100), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("seq", name="uq_events_seq"),
    )
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_index("ix_events_client", "events", ["client"])


def downgrade() -> None:
    for table in ("events", "host_releases", "run_hosts", "runs", "hosts", "clients"):
        op.drop_table(table)
