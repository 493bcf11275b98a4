"""The record schema of the wire contract, and the fleet's silence rule: pure functions."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.collector.schema import EnvelopeError, parse_envelope, parse_record
from orchestrator.errors import ConfigError
from orchestrator.fleet import host_state, parse_duration
from orchestrator.ledger.telemetry import HeartbeatRecord

BOOT = "0123456789abcdef" * 2


def good(**extra: object) -> dict[str, object]:
    return {"type": "alert", "boot": BOOT, "seq": 7, "time": "2026-12-06T23:00:00.123Z", "host": "g1", **extra}


def test_a_good_alert_becomes_typed_columns_and_keeps_its_raw_json() -> None:
    parsed = parse_record(good(rule="r", ip="1.2.3.4", count=5, action="banned", extra={"x": 1}), "g1")
    assert not isinstance(parsed, str)
    assert (parsed.type, parsed.boot, parsed.seq) == ("alert", BOOT, 7)
    assert parsed.host_time == dt.datetime(2026, 12, 6, 23, 0, 0, 123000, tzinfo=dt.UTC)
    assert parsed.columns["severity"] == "medium"
    assert parsed.columns["rule"] == "r" and parsed.raw["extra"] == {"x": 1}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "gossip"}, "'type'"),
        ({"boot": "ABC"}, "'boot'"),
        ({"seq": -1}, "'seq'"),
        ({"seq": True}, "'seq'"),
        ({"seq": "3"}, "'seq'"),
        ({"host": "g2"}, "'host'"),
        ({"time": "2026-12-06 23:00"}, "time zone"),
        ({"time": "soon"}, "RFC 3339"),
        ({"severity": "apocalyptic"}, "'severity'"),
        ({"count": -5}, "'count'"),
    ],
)
def test_a_bad_record_is_rejected_with_a_reason(change: dict[str, object], reason: str) -> None:
    result = parse_record(good(**change), "g1")
    assert isinstance(result, str) and reason in result


def test_heartbeat_columns_and_bad_dropped() -> None:
    beat = good(type="heartbeat", event="interval", interval_seconds=30, dropped={"alert": 2, "heartbeat": 0})
    parsed = parse_record(beat, "g1")
    assert not isinstance(parsed, str)
    assert parsed.columns["dropped_alerts"] == 2 and parsed.columns["interval_seconds"] == 30.0
    assert isinstance(parse_record(good(type="heartbeat", dropped=[1]), "g1"), str)
    assert isinstance(parse_record(good(type="heartbeat", event="reboot"), "g1"), str)


@pytest.mark.parametrize(
    "data", [[], {"records": []}, {"host": "", "records": []}, {"host": "g1", "records": {}}, {"host": 3}]
)
def test_a_bad_envelope_is_refused_whole(data: object) -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(data, 10)


def test_too_many_records_are_refused() -> None:
    with pytest.raises(EnvelopeError, match="at most 2"):
        parse_envelope({"host": "g1", "records": [{}, {}, {}]}, 2)


def beat(received: dt.datetime, interval: float | None = 10, event: str = "interval") -> HeartbeatRecord:
    return HeartbeatRecord(
        client="c", host="h", boot=BOOT, seq=1, host_time=received - dt.timedelta(hours=5), received_at=received,
        event=event, version="1", rules_digest="d", status="ok", interval_seconds=interval, spool_records=0,
        spool_bytes=0, quarantined=0, bans_active=0,
    )  # fmt: skip


def test_silence_is_three_expected_intervals_by_the_receive_clock_whatever_the_host_claims() -> None:
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    assert host_state(None, now, 10) == "never seen"
    assert host_state(beat(now - dt.timedelta(seconds=30)), now, 10) == "online"
    assert host_state(beat(now - dt.timedelta(seconds=31)), now, 10) == "silent"
    assert host_state(beat(now - dt.timedelta(seconds=80), interval=30), now, 30) == "online"
    assert host_state(beat(now - dt.timedelta(seconds=91), interval=None), now, 30) == "silent"
    assert host_state(beat(now, event="stop"), now, 30) == "silent"
    # The host's own claim changes nothing: a day-long (or endless) interval does not keep it online.
    for claimed in (86_400.0, 1e9, float("inf")):
        assert host_state(beat(now - dt.timedelta(seconds=46), interval=claimed), now, 15) == "silent"
    # Nor does a claim shorter than expected turn it silent early.
    assert host_state(beat(now - dt.timedelta(seconds=80), interval=1), now, 30) == "online"


@pytest.mark.parametrize("key", ["interval_seconds", "uptime_seconds"])
@pytest.mark.parametrize("value", [1e11, float("inf"), float("nan"), -1, 10**400, "30", True])
def test_reported_numbers_must_be_finite_and_bounded(key: str, value: object) -> None:
    result = parse_record(good(type="heartbeat", **{key: value}), "g1")
    assert isinstance(result, str) and key in result


def test_the_bounds_themselves_are_accepted() -> None:
    parsed = parse_record(good(type="heartbeat", interval_seconds=86_400, uptime_seconds=1e10), "g1")
    assert not isinstance(parsed, str) and parsed.columns["interval_seconds"] == 86_400.0
    assert isinstance(parse_record(good(type="heartbeat", interval_seconds=86_401), "g1"), str)


def test_durations() -> None:
    assert parse_duration("30d") == dt.timedelta(days=30)
    assert parse_duration("90s") == dt.timedelta(seconds=90)
    for bad in ("", "1", "0h", "1w", "-1h"):
        with pytest.raises(ConfigError):
            parse_duration(bad)


def test_heartbeat_pack_fields_and_the_pack_event() -> None:
    digest = "ab" * 32
    beat = good(
        type="heartbeat",
        event="pack",
        pack_version="2026.12.7",
        pack_digest=digest,
        pack_status="active",
        detect_us_per_line=3.5,
        pack_error="pack 2026.12.6 refused: signature does not verify",
    )
    parsed = parse_record(beat, "g1")
    assert not isinstance(parsed, str)
    assert parsed.columns["event"] == "pack"
    assert (parsed.columns["pack_version"], parsed.columns["pack_digest"]) == ("2026.12.7", digest)
    assert (parsed.columns["pack_status"], parsed.columns["detect_us_per_line"]) == ("active", 3.5)
    assert parsed.raw["pack_error"].startswith("pack 2026.12.6")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("pack_version", 7),
        ("pack_version", "x" * 65),
        ("pack_digest", "ABC"),
        ("pack_status", "exploded"),
        ("detect_us_per_line", -1),
        ("detect_us_per_line", True),
        ("detect_us_per_line", float("nan")),
        ("detect_us_per_line", "fast"),
    ],
)
def test_odd_pack_fields_are_left_out_not_refused(key: str, value: object) -> None:
    parsed = parse_record(good(type="heartbeat", **{key: value}), "g1")
    assert not isinstance(parsed, str)
    assert parsed.columns[key] is None


def test_a_heartbeat_without_pack_fields_has_none_of_them() -> None:
    parsed = parse_record(good(type="heartbeat", event="interval"), "g1")
    assert not isinstance(parsed, str)
    assert all(parsed.columns[k] is None for k in ("pack_version", "pack_digest", "pack_status", "detect_us_per_line"))
