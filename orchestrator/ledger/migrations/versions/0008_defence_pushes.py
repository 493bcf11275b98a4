"""Defence pushes: each push of a pack (plan, state, per-host state, halt reason, emergency reason), one push at a
time per client (locks recovered from a dead holder as rollout locks are), and the collective-defence proposals.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Written by hand like the others: three new tables, nothing to fill.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "defence_pushes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("clients", sa.Text(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("emergency_reason", sa.Text(), nullable=True),
        sa.Column("dwell_override_seconds", sa.Integer(), nullable=True),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("hosts", sa.Text(), nullable=False),
        sa.Column("halt_reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_defence_pushes"),
        sa.UniqueConstraint("uid", name="uq_defence_pushes_uid"),
    )
    op.create_index("ix_defence_pushes_state", "defence_pushes", ["state"])
    op.create_table(
        "defence_push_locks",
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("push_uid", sa.String(128), nullable=False),
        sa.Column("holder_host", sa.String(255), nullable=False),
        sa.Column("holder_pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["push_uid"], ["defence_pushes.uid"], name="fk_defence_push_locks_push_uid_defence_pushes"
        ),
        sa.PrimaryKeyConstraint("client", name="pk_defence_push_locks"),
    )
    op.create_index("ix_defence_push_locks_push_uid", "defence_push_locks", ["push_uid"])
    op.create_table(
        "defence_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("net", sa.String(64), nullable=False),
        sa.Column("clients", sa.Text(), nullable=False),
        sa.Column("bans", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pushed_version", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_defence_proposals"),
    )
    op.create_index("ix_defence_proposals_net", "defence_proposals", ["net"])


def downgrade() -> None:
    op.drop_table("defence_proposals")
    op.drop_table("defence_push_locks")
    op.drop_table("defence_pushes")
