"""Portal tokens: per-client read-only tokens of the customer portal, by their sha256 only.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Written by hand like the others. Only a new table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portal_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_portal_tokens"),
        sa.UniqueConstraint("sha256", name="uq_portal_tokens_sha256"),
    )
    op.create_index("ix_portal_tokens_client", "portal_tokens", ["client"])


def downgrade() -> None:
    op.drop_table("portal_tokens")
