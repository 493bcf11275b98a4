"""Defence packs: the signed packs ``sentryctl defence build`` made, which pack each host is meant to run (and the
one before it, what a revert goes back to), and what the agents report of their active pack in every heartbeat.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Written by hand like the others. Two new tables and four nullable columns on ``telemetry_heartbeats`` (older
heartbeats have none of them: their agents had no packs, so there is nothing to fill). A pack's bytes and signature
are kept in the ledger too, not only in the catalog under the state directory: the collector serves them from the
database (it may run on another machine than the one that built them), and ``defence verify`` compares both copies.
Assignments name the client by name, like rollouts, so a client removed and added again keeps its history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "defence_packs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("rules_version", sa.String(64), nullable=True),
        sa.Column("rule_count", sa.Integer(), nullable=False),
        sa.Column("blocklist_count", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("built_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_defence_packs"),
        sa.UniqueConstraint("version", name="uq_defence_packs_version"),
    )
    op.create_table(
        "defence_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("previous_version", sa.String(64), nullable=True),
        sa.Column("previous_digest", sa.String(64), nullable=True),
        sa.Column("push_uid", sa.String(128), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_defence_assignments"),
        sa.UniqueConstraint("client", "host", name="uq_defence_assignments_client_host"),
    )
    op.add_column("telemetry_heartbeats", sa.Column("pack_version", sa.String(64), nullable=True))
    op.add_column("telemetry_heartbeats", sa.Column("pack_digest", sa.String(64), nullable=True))
    op.add_column("telemetry_heartbeats", sa.Column("pack_status", sa.String(16), nullable=True))
    op.add_column("telemetry_heartbeats", sa.Column("detect_us_per_line", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("telemetry_heartbeats") as batch:
        batch.drop_column("detect_us_per_line")
        batch.drop_column("pack_status")
        batch.drop_column("pack_digest")
        batch.drop_column("pack_version")
    op.drop_table("defence_assignments")
    op.drop_table("defence_packs")
