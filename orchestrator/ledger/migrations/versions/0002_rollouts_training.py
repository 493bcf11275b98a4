"""Rollouts and their hosts, rollout locks (one rollout per client at a time), on-site training sessions.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01

Written out by hand, like 0001, so that it stays what it was when later revisions change the models. Only new
tables: existing rows are not touched. Clients are named, not referenced by row (see the models).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column[_dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(128), nullable=False),
        sa.Column("release_version", sa.String(64), nullable=False),
        sa.Column("track", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        # The plan as the planner produced it, and the client names: canonical JSON text.
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("clients", sa.Text(), nullable=False),
        sa.Column("emergency_reason", sa.Text(), nullable=True),
        # A rollback rollout names the rollout that caused it.
        sa.Column("parent_uid", sa.String(128), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("finished_at", nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
        sa.UniqueConstraint("uid", name="uq_rollouts_uid"),
        sa.ForeignKeyConstraint(["parent_uid"], ["rollouts.uid"], name="fk_rollouts_parent_uid_rollouts"),
    )
    op.create_index("ix_rollouts_state", "rollouts", ["state"])
    op.create_index("ix_rollouts_parent_uid", "rollouts", ["parent_uid"])

    op.create_table(
        "rollout_hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("target_version", sa.String(64), nullable=False),
        sa.Column("previous_version", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_hosts"),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], name="fk_rollout_hosts_rollout_id_rollouts"),
        sa.UniqueConstraint("rollout_id", "client", "host", name="uq_rollout_hosts_rollout_id_client_host"),
    )

    op.create_table(
        "rollout_locks",
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("rollout_uid", sa.String(128), nullable=False),
        sa.Column("holder_host", sa.String(255), nullable=False),
        sa.Column("holder_pid", sa.Integer(), nullable=False),
        _timestamp("acquired_at"),
        _timestamp("heartbeat_at"),
        sa.PrimaryKeyConstraint("client", name="pk_rollout_locks"),
        sa.ForeignKeyConstraint(["rollout_uid"], ["rollouts.uid"], name="fk_rollout_locks_rollout_uid_rollouts"),
    )
    op.create_index("ix_rollout_locks_rollout_uid", "rollout_locks", ["rollout_uid"])

    op.create_table(
        "training_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("release_version", sa.String(64), nullable=False),
        sa.Column("module", sa.String(128), nullable=True),
        # A calendar date, YYYY-MM-DD: no time zone to get wrong.
        sa.Column("scheduled_for", sa.String(10), nullable=True),
        sa.Column("trainer", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _timestamp("signed_off_at", nullable=True),
        sa.Column("signed_off_by", sa.String(255), nullable=True),
        sa.Column("attendees", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_training_sessions"),
    )
    op.create_index("ix_training_sessions_client", "training_sessions", ["client"])


def downgrade() -> None:
    for table in ("training_sessions", "rollout_locks", "rollout_hosts", "rollouts"):
        op.drop_table(table)
