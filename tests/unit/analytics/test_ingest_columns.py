"""What the collector's schema keeps in columns for analytics: the firewall's drop totals of a heartbeat and the
ban duration of an alert."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.collector.schema import parse_record
from orchestrator.ledger.telemetry import IncomingRecord


def parsed(kind: str, **extra: Any) -> IncomingRecord | str:
    record = {"type": kind, "boot": "a" * 32, "seq": 1, "time": "2026-11-02T10:00:00Z", "host": "h", **extra}
    return parse_record(record, "h")


def test_firewall_counters_are_summed() -> None:
    fw = {"banned_v4": {"packets": 5, "bytes": 500}, "game_udp_v4": {"packets": 2, "bytes": 80}, "x": {}}
    rec = parsed("heartbeat", firewall=fw)
    assert isinstance(rec, IncomingRecord)
    assert (rec.columns["fw_packets"], rec.columns["fw_bytes"]) == (7, 580)
    none = parsed("heartbeat", firewall=None)
    assert isinstance(none, IncomingRecord) and none.columns["fw_packets"] is None


@pytest.mark.parametrize("fw", [[1, 2], {"a": 3}, {"a": {"packets": -1}}, {"a": {"bytes": "9"}}])
def test_malformed_firewall_is_a_rejected_record(fw: object) -> None:
    assert isinstance(parsed("heartbeat", firewall=fw), str)


@pytest.mark.parametrize(
    ("value", "kept"), [(3600, 3600), (0, 0), ("3600", None), (-1, None), (True, None), (1.5, None), (None, None)]
)
def test_ban_seconds_kept_when_sane_never_refused(value: object, kept: int | None) -> None:
    rec = parsed("alert", ban_seconds=value)
    assert isinstance(rec, IncomingRecord) and rec.columns["ban_seconds"] == kept
