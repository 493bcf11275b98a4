"""Heartbeats stored before 0006 get their firewall totals from their stored JSON when the ledger is upgraded, so
analytics counts their drops like the ones the collector sums on ingest; and 0006 goes down and up again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from orchestrator.ledger import Ledger

from .test_migration_0002 import migrate_to

Sql = Callable[..., list[Any]]


def _heartbeat(sql: Sql, url: str, seq: int, firewall: object) -> None:
    raw = json.dumps({"type": "heartbeat", "seq": seq, "firewall": firewall})
    when = "2026-11-02 10:00:00.000000" if url.startswith("sqlite") else "2026-11-02T10:00:00+00:00"
    sql(
        "INSERT INTO telemetry_heartbeats (client, host, boot, seq, host_time, received_at, raw)"
        " VALUES ('acme', 'h', :boot, :seq, :t, :t, :raw)",
        boot="a" * 32,
        seq=seq,
        t=when,
        raw=raw,
    )


def _alert(sql: Sql, url: str, seq: int, seconds: object) -> None:
    raw = json.dumps({"type": "alert", "seq": seq, "ban_seconds": seconds})
    when = "2026-11-02 10:00:00.000000" if url.startswith("sqlite") else "2026-11-02T10:00:00+00:00"
    sql(
        "INSERT INTO telemetry_alerts (client, host, boot, seq, host_time, received_at, severity, raw)"
        " VALUES ('acme', 'h', :boot, :seq, :t, :t, 'high', :raw)",
        boot="a" * 32,
        seq=seq,
        t=when,
        raw=raw,
    )


def test_upgrade_fills_firewall_totals_from_the_stored_json(ledger_url: str, home: Path, sql: Sql) -> None:
    migrate_to(ledger_url, home, "0005")
    _heartbeat(
        sql, ledger_url, 0, {"banned_v4": {"packets": 5, "bytes": 500}, "ct_state_invalid": {"packets": 2, "bytes": 80}}
    )
    _heartbeat(sql, ledger_url, 1, None)
    _heartbeat(sql, ledger_url, 2, {})
    for seq, seconds in enumerate([3600, "3600", -5, None, 1.5]):
        _alert(sql, ledger_url, seq, seconds)
    with Ledger.open(ledger_url, home):  # opening upgrades to the head
        pass
    rows = sql("SELECT seq, fw_packets, fw_bytes FROM telemetry_heartbeats ORDER BY seq")
    assert [tuple(r) for r in rows] == [(0, 7, 580), (1, None, None), (2, 0, 0)]
    # Only a whole, non-negative number of seconds is a ban duration.
    assert [r[0] for r in sql("SELECT ban_seconds FROM telemetry_alerts ORDER BY seq")] == [
        3600,
        None,
        None,
        None,
        None,
    ]
    migrate_to(ledger_url, home, "0005", down=True)
    assert "fw_packets" not in {
        c["name"] for c in sa.inspect(sa.create_engine(ledger_url)).get_columns("telemetry_heartbeats")
    }
    assert not sa.inspect(sa.create_engine(ledger_url)).has_table("portal_tokens")
    migrate_to(ledger_url, home, "head")
