"""Incidents: the incidents themselves, their timelines, detection's watermarks and the escalation steps (pages).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Written by hand like the others. Only new tables. The dedup key is unique per client among unresolved incidents
(a partial unique index, as the live-name indexes of clients and hosts): two collector processes detecting the
same problem open one incident, and a resolved incident frees its key for the next occurrence.

Detection's watermarks start at the ledger's present (the newest event and alert): an upgraded ledger does not
turn the rollouts that halted and the audits that drifted before it into incidents now.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("tier", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("hosts", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(255), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurrences", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(255), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.Column("resolve_note", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index(
        "uq_incidents_client_dedup_key_open",
        "incidents",
        ["client", "dedup_key"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index("ix_incidents_client_opened_at", "incidents", ["client", "opened_at"])
    op.create_index("ix_incidents_state", "incidents", ["state"])

    op.create_table(
        "incident_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_incident_steps_incident_id_incidents"),
        sa.PrimaryKeyConstraint("id", name="pk_incident_steps"),
    )
    op.create_index("ix_incident_steps_incident_id", "incident_steps", ["incident_id"])

    op.create_table(
        "incident_watermarks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_incident_watermarks"),
    )

    op.create_table(
        "incident_escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(32), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_incident_escalations_incident_id_incidents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incident_escalations"),
        sa.UniqueConstraint("incident_id", "step_index", name="uq_incident_escalations_incident_id_step_index"),
    )
    op.create_index("ix_incident_escalations_state_next_try_at", "incident_escalations", ["state", "next_try_at"])

    conn = op.get_bind()
    now = _dt.datetime.now(_dt.UTC)
    # As the ledger's UTCDateTime stores it: naive UTC on SQLite, aware on PostgreSQL.
    stamp = now.replace(tzinfo=None) if conn.dialect.name == "sqlite" else now
    tops = {
        "events": sa.text("SELECT COALESCE(MAX(seq), 0) FROM events"),
        "alerts": sa.text("SELECT COALESCE(MAX(id), 0) FROM telemetry_alerts"),
    }
    for name, query in tops.items():
        top = conn.execute(query).scalar_one()
        conn.execute(
            sa.text("INSERT INTO incident_watermarks (name, value, updated_at) VALUES (:name, :value, :at)"),
            {"name": name, "value": int(top), "at": stamp},
        )


def downgrade() -> None:
    op.drop_table("incident_escalations")
    op.drop_table("incident_watermarks")
    op.drop_table("incident_steps")
    op.drop_table("incidents")
