"""Portal tokens: per-client read-only tokens of the customer portal, by their sha256 only; and the sums of the
firewall's drop counters on each heartbeat and the ban duration of each alert, for analytics.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Written by hand like the others. A new table, and nullable columns on ``telemetry_heartbeats`` and
``telemetry_alerts`` filled from the stored JSON for the records already there (the collector fills them on
ingest from now on): aggregating columns instead of every record's JSON is what keeps a month's report over a
million alerts within seconds (bench/analytics.py).
"""

# The backfill's SQL is fixed text put together per dialect here; there is no input in it.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
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

    op.add_column("telemetry_alerts", sa.Column("ban_seconds", sa.BigInteger(), nullable=True))
    op.add_column("telemetry_heartbeats", sa.Column("fw_packets", sa.BigInteger(), nullable=True))
    op.add_column("telemetry_heartbeats", sa.Column("fw_bytes", sa.BigInteger(), nullable=True))
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        seconds = "json_extract(raw, '$.ban_seconds')"
        is_int = f"json_type(raw, '$.ban_seconds') = 'integer' AND {seconds} >= 0"
    else:
        seconds = "CAST(raw AS jsonb)->'ban_seconds'"
        is_int = f"jsonb_typeof({seconds}) = 'number' AND ({seconds})::text ~ '^[0-9]{{1,18}}$'"
    op.execute(
        f"UPDATE telemetry_alerts SET ban_seconds = CAST(({seconds}){'' if sqlite else '::text'} AS BIGINT)"
        f" WHERE {is_int}"
    )
    if sqlite:
        total = "(SELECT total(json_extract(j.value, '$.{0}')) FROM json_each(raw, '$.firewall') AS j)"
        where = "json_type(raw, '$.firewall') = 'object'"
    else:
        total = (
            "(SELECT coalesce(sum((j.value->>'{0}')::bigint), 0) FROM jsonb_each(CAST(raw AS jsonb)->'firewall') AS j)"
        )
        where = "jsonb_typeof(CAST(raw AS jsonb)->'firewall') = 'object'"
    sql = (
        f"UPDATE telemetry_heartbeats SET fw_packets = CAST({total.format('packets')} AS BIGINT),"
        f" fw_bytes = CAST({total.format('bytes')} AS BIGINT) WHERE {where}"
    )
    op.execute(sql)


def downgrade() -> None:
    with op.batch_alter_table("telemetry_heartbeats") as batch:
        batch.drop_column("fw_bytes")
        batch.drop_column("fw_packets")
    with op.batch_alter_table("telemetry_alerts") as batch:
        batch.drop_column("ban_seconds")
    op.drop_table("portal_tokens")
