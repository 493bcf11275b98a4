"""The wire contract's record schema, as pure functions: an envelope is accepted or refused as a whole (400);
each record is turned into an :class:`~orchestrator.ledger.telemetry.IncomingRecord` or a one-line reason."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any

from ..ledger.telemetry import IncomingRecord

BOOT_RE = re.compile(r"^[0-9a-f]{32}\Z")
HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z")
MAX_SEQ = 2**63 - 1
# Bounds of the reported numbers: anything beyond is a broken or hostile agent, refused rather than stored.
MAX_INTERVAL_SECONDS = 86_400.0
MAX_UPTIME_SECONDS = 1e10
SEVERITIES = ("low", "medium", "high", "critical")
# "pack": written at once when the agent activates, reverts, refuses or drops a defence pack.
HEARTBEAT_EVENTS = ("start", "interval", "stop", "pack")
PACK_STATUSES = ("none", "active", "reverted", "refused")
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
# A detector slower than this per line is broken, not slow; a value beyond it is not a measurement.
MAX_DETECT_US_PER_LINE = 1e9


class EnvelopeError(ValueError):
    """Raised when a request body is not an envelope of the contract's shape."""


@dataclass(frozen=True)
class Envelope:
    host: str
    records: list[Any]


def parse_envelope(data: Any, max_records: int) -> Envelope:
    if not isinstance(data, dict):
        raise EnvelopeError("the body must be a JSON object {host, records}")
    host = data.get("host")
    if not isinstance(host, str) or not HOST_RE.match(host):
        raise EnvelopeError("'host' must be the inventory host name")
    records = data.get("records")
    if not isinstance(records, list):
        raise EnvelopeError("'records' must be a list")
    if len(records) > max_records:
        raise EnvelopeError(f"at most {max_records} records per batch")
    return Envelope(host, records)


def parse_time(value: Any) -> _dt.datetime:
    if not isinstance(value, str):
        raise ValueError("'time' must be an RFC 3339 string")
    try:
        parsed = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("'time' is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise ValueError("'time' has no time zone")
    return parsed.astimezone(_dt.UTC)


def parse_record(record: Any, host: str) -> IncomingRecord | str:
    """The record ready to store, or why it is rejected."""
    if not isinstance(record, dict):
        return "a record must be a JSON object"
    kind = record.get("type")
    if kind not in ("alert", "heartbeat"):
        return "'type' must be 'alert' or 'heartbeat'"
    boot = record.get("boot")
    if not isinstance(boot, str) or not BOOT_RE.match(boot):
        return "'boot' must be 32 lower-case hex characters"
    seq = record.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        return "'seq' must be an integer >= 0"
    if record.get("host") != host:
        return "'host' differs from the envelope's host"
    try:
        host_time = parse_time(record.get("time"))
    except ValueError as exc:
        return str(exc)
    try:
        columns = _alert_columns(record) if kind == "alert" else _heartbeat_columns(record)
    except ValueError as exc:
        return str(exc)
    return IncomingRecord(type=kind, boot=boot, seq=seq, host_time=host_time, columns=columns, raw=record)


def _text(record: dict[str, Any], key: str, limit: int) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"'{key}' must be a string of at most {limit} characters")
    return value


def _int(record: Any, key: str) -> int | None:
    value = record.get(key) if isinstance(record, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise ValueError(f"'{key}' must be an integer >= 0")
    return value


def _number(record: dict[str, Any], key: str, maximum: float) -> float | None:
    """A finite number in [0, maximum]. Python's json accepts Infinity and NaN: the range check refuses both (NaN
    compares false), and it compares a huge int without converting it to float (which would overflow)."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= maximum:
        raise ValueError(f"'{key}' must be a number from 0 to {maximum:g}")
    return float(value)


def _alert_columns(record: dict[str, Any]) -> dict[str, Any]:
    severity = record.get("severity", "medium")
    if severity not in SEVERITIES:
        raise ValueError(f"'severity' must be one of {', '.join(SEVERITIES)}")
    return {
        "rule": _text(record, "rule", 128),
        "source": _text(record, "source", 128),
        "ip": _text(record, "ip", 64),
        "count": _int(record, "count"),
        "action": _text(record, "action", 32),
        "severity": severity,
        "version": _text(record, "version", 64),
        "rules_version": _text(record, "rules_version", 64),
        "ban_seconds": _lenient_int(record.get("ban_seconds")),
    }


def _lenient_int(value: Any) -> int | None:
    """An optional figure kept for analytics: stored when it is a sane integer, else left out (the record is not
    refused for it; the wire contract never required it)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        return None
    return value


def _heartbeat_columns(record: dict[str, Any]) -> dict[str, Any]:
    event = record.get("event")
    if event is not None and event not in HEARTBEAT_EVENTS:
        raise ValueError(f"'event' must be one of {', '.join(HEARTBEAT_EVENTS)}")
    dropped = record.get("dropped")
    if dropped is not None and not isinstance(dropped, dict):
        raise ValueError("'dropped' must be an object {alert, heartbeat}")
    return {
        "event": event,
        "version": _text(record, "version", 64),
        "rules_digest": _text(record, "rules_digest", 128),
        "status": _text(record, "status", 32),
        "uptime_seconds": _number(record, "uptime_seconds", MAX_UPTIME_SECONDS),
        "interval_seconds": _number(record, "interval_seconds", MAX_INTERVAL_SECONDS),
        "spool_records": _int(record, "spool_records"),
        "spool_bytes": _int(record, "spool_bytes"),
        "dropped_alerts": _int(dropped, "alert"),
        "dropped_heartbeats": _int(dropped, "heartbeat"),
        "quarantined": _int(record, "quarantined"),
        "bans_active": _int(record, "bans_active"),
        **_firewall_totals(record.get("firewall")),
        **_pack_columns(record),
    }


def _pack_columns(record: dict[str, Any]) -> dict[str, Any]:
    """The active defence pack's figures, read leniently like ``ban_seconds``: a value that does not fit is left
    out (None), never a reason to refuse the heartbeat (agents from before packs send none of them)."""
    version = record.get("pack_version")
    digest = record.get("pack_digest")
    status = record.get("pack_status")
    cost = record.get("detect_us_per_line")
    return {
        "pack_version": version if isinstance(version, str) and 0 < len(version) <= 64 else None,
        "pack_digest": digest if isinstance(digest, str) and SHA256_RE.match(digest) else None,
        "pack_status": status if status in PACK_STATUSES else None,
        "detect_us_per_line": (
            float(cost)
            if not isinstance(cost, bool) and isinstance(cost, int | float) and 0 <= cost <= MAX_DETECT_US_PER_LINE
            else None
        ),
    }


def _firewall_totals(firewall: Any) -> dict[str, int | None]:
    """The sums of the drop counters (``{name: {packets, bytes}}``); None when the heartbeat has none."""
    if firewall is None:
        return {"fw_packets": None, "fw_bytes": None}
    if not isinstance(firewall, dict) or not all(isinstance(c, dict) for c in firewall.values()):
        raise ValueError("'firewall' must be an object {name: {packets, bytes}}")
    packets = sum(_int(c, "packets") or 0 for c in firewall.values())
    octets = sum(_int(c, "bytes") or 0 for c in firewall.values())
    if packets > MAX_SEQ or octets > MAX_SEQ:
        raise ValueError("'firewall' counters sum beyond 2**63")
    return {"fw_packets": packets, "fw_bytes": octets}
