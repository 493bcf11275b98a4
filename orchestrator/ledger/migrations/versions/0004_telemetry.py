"""Telemetry: collector tokens (by hash), alerts and heartbeats as the agents reported them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Written by hand like the others. Only new tables. (client, host, boot, seq) is unique in both record tables:
it is the idempotency key of the wire contract (docs/telemetry-protocol.md), so a replayed batch stores nothing
new. The time-range indexes lead with the client because every reader (fleet view, incidents, analytics, the
portal) is scoped to one client.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _record_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("boot", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("host_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "collector_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_collector_tokens"),
        sa.UniqueConstraint("sha256", name="uq_collector_tokens_sha256"),
    )
    op.create_index("ix_collector_tokens_client", "collector_tokens", ["client"])

    op.create_table(
        "telemetry_alerts",
        *_record_columns(),
        sa.Column("rule", sa.String(128), nullable=True),
        sa.Column("source", sa.String(128), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(32), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("rules_version", sa.String(64), nullable=True),
        # the record as the agent wrote it, canonical JSON text
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_telemetry_alerts"),
        sa.UniqueConstraint("client", "host", "boot", "seq", name="uq_telemetry_alerts_client_host_boot_seq"),
    )
    op.create_index("ix_telemetry_alerts_client_received_at", "telemetry_alerts", ["client", "received_at"])
    op.create_index(
        "ix_telemetry_alerts_client_host_received_at", "telemetry_alerts", ["client", "host", "received_at"]
    )

    op.create_table(
        "telemetry_heartbeats",
        *_record_columns(),
        sa.Column("event", sa.String(16), nullable=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("rules_digest", sa.String(128), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("uptime_seconds", sa.Float(), nullable=True),
        sa.Column("interval_seconds", sa.Float(), nullable=True),
        sa.Column("spool_records", sa.Integer(), nullable=True),
        sa.Column("spool_bytes", sa.BigInteger(), nullable=True),
        sa.Column("dropped_alerts", sa.Integer(), nullable=True),
        sa.Column("dropped_heartbeats", sa.Integer(), nullable=True),
        sa.Column("quarantined", sa.Integer(), nullable=True),
        sa.Column("bans_active", sa.Integer(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_telemetry_heartbeats"),
        sa.UniqueConstraint("client", "host", "boot", "seq", name="uq_telemetry_heartbeats_client_host_boot_seq"),
    )
    op.create_index("ix_telemetry_heartbeats_client_received_at", "telemetry_heartbeats", ["client", "received_at"])
    op.create_index(
        "ix_telemetry_heartbeats_client_host_received_at",
        "telemetry_heartbeats",
        ["client", "host", "received_at"],
    )


def downgrade() -> None:
    op.drop_table("telemetry_heartbeats")
    op.drop_table("telemetry_alerts")
    op.drop_table("collector_tokens")
