"""Audits: who audited which client when, the result, and the hash of the evidence bundle.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Written out by hand, like 0001 and 0002. Only a new table. Clients are named, not referenced by row, as for
rollouts and training: an audit outlives a tier change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(128), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("auditor", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        # host name -> status, canonical JSON text
        sa.Column("hosts", sa.Text(), nullable=False),
        sa.Column("bundle_path", sa.Text(), nullable=False),
        sa.Column("bundle_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audits"),
        sa.UniqueConstraint("uid", name="uq_audits_uid"),
    )
    op.create_index("ix_audits_client", "audits", ["client"])


def downgrade() -> None:
    op.drop_table("audits")
