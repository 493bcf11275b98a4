"""The fleet view: per host, what its last heartbeat said and whether it is online, silent or never seen.

Silence is judged by the collector's receive clock, never the host's (a host clock hours off must not hide a
silent host): silent when the last heartbeat arrived more than 3 of *its own* ``interval_seconds`` ago.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from .errors import ConfigError
from .ledger import Ledger
from .ledger.telemetry import AlertRecord, HeartbeatRecord

SILENT_AFTER_INTERVALS = 3
DEFAULT_INTERVAL_SECONDS = 30.0
DURATION_RE = re.compile(r"^(\d+)([smhd])\Z")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> _dt.timedelta:
    match = DURATION_RE.match(text.strip())
    if not match or int(match[1]) == 0:
        raise ConfigError(f"invalid duration {text!r}", hint="write a number and a unit: 90s, 15m, 1h, 30d")
    return _dt.timedelta(seconds=int(match[1]) * UNITS[match[2]])


def host_state(last: HeartbeatRecord | None, now: _dt.datetime) -> str:
    """``online``, ``silent`` or ``never seen`` (see the module docstring)."""
    if last is None:
        return "never seen"
    interval = last.interval_seconds or DEFAULT_INTERVAL_SECONDS
    if last.event == "stop":
        return "silent"  # stopped on purpose is still not watching
    age = (now - last.received_at).total_seconds()
    return "silent" if age > SILENT_AFTER_INTERVALS * interval else "online"


@dataclass(frozen=True)
class HostStatus:
    client: str
    host: str
    state: str
    last_heartbeat: _dt.datetime | None
    age_seconds: float | None
    version: str | None
    rules_digest: str | None
    spool_records: int | None
    alerts_last_hour: int


def status(ledger: Ledger, client: str | None = None, now: _dt.datetime | None = None) -> list[HostStatus]:
    """Every live host the ledger knows (of one client or all), plus any host that reported and is gone since."""
    now = now or _dt.datetime.now(_dt.UTC)
    clients = [c for c in ledger.clients() if client is None or c.name == client]
    if client is not None and not clients:
        raise ConfigError(f"client {client!r} is not in the ledger", hint="see 'sentryctl client list'")
    beats = {(b.client, b.host): b for b in ledger.latest_heartbeats(client)}
    counts = ledger.alert_counts(now - _dt.timedelta(hours=1), client)
    keys = {(c.name, h.name) for c in clients for h in c.hosts} | set(beats)
    result = []
    for key in sorted(keys):
        last = beats.get(key)
        result.append(
            HostStatus(
                client=key[0],
                host=key[1],
                state=host_state(last, now),
                last_heartbeat=last.received_at if last else None,
                age_seconds=round((now - last.received_at).total_seconds(), 1) if last else None,
                version=last.version if last else None,
                rules_digest=last.rules_digest if last else None,
                spool_records=last.spool_records if last else None,
                alerts_last_hour=counts.get(key, 0),
            )
        )
    return result


def alerts(
    ledger: Ledger, client: str, *, host: str | None = None, since: _dt.timedelta | None = None, limit: int = 1000
) -> list[AlertRecord]:
    start = _dt.datetime.now(_dt.UTC) - since if since is not None else None
    return ledger.telemetry_alerts(client, host=host, since=start, limit=limit)
