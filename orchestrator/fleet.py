"""The fleet view: per host, what its last heartbeat said and whether it is online, silent or never seen.

Silence is judged by what Sentry expects, never by what the host claims: by the collector's receive clock (a host
clock hours off must not hide a silent host), and against the heartbeat interval provisioning gives the agent
(the host's tier with the inventory's ``sentry_tier_overrides``), not the ``interval_seconds`` the heartbeat
reports (a host claiming a day-long interval would otherwise stay online a day after going dark). Silent when the
last heartbeat arrived more than 3 expected intervals ago.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import inventory
from .audit.expected import host_vars
from .errors import ConfigError, InventoryError
from .ledger import ClientRecord, Ledger
from .ledger.telemetry import AlertRecord, HeartbeatRecord
from .tiers import get_tier

SILENT_AFTER_INTERVALS = 3
DEFAULT_INTERVAL_SECONDS = 30.0
MAX_EXPECTED_INTERVAL_SECONDS = 86_400.0  # the collector's bound on a reported interval, too
DURATION_RE = re.compile(r"^(\d+)([smhd])\Z")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> _dt.timedelta:
    match = DURATION_RE.match(text.strip())
    if not match or int(match[1]) == 0:
        raise ConfigError(f"invalid duration {text!r}", hint="write a number and a unit: 90s, 15m, 1h, 30d")
    return _dt.timedelta(seconds=int(match[1]) * UNITS[match[2]])


def host_state(last: HeartbeatRecord | None, now: _dt.datetime, expected_interval: float) -> str:
    """``online``, ``silent`` or ``never seen`` (see the module docstring)."""
    if last is None:
        return "never seen"
    if last.event == "stop":
        return "silent"  # stopped on purpose is still not watching
    age = (now - last.received_at).total_seconds()
    return "silent" if age > SILENT_AFTER_INTERVALS * expected_interval else "online"


def _tier_interval(tier: Any, overrides: Any) -> float:
    if isinstance(overrides, dict) and "heartbeat_interval_seconds" in overrides:
        value = float(overrides["heartbeat_interval_seconds"])
        if not 0 < value <= MAX_EXPECTED_INTERVAL_SECONDS:
            raise ValueError(f"{value:g} s is not in (0, {MAX_EXPECTED_INTERVAL_SECONDS:g}]")
        return value
    return float(get_tier(str(tier)).heartbeat_interval_seconds)


def expected_intervals(inventories: Path | None, client: ClientRecord) -> dict[str, float]:
    """Per host of the client's inventory, the heartbeat interval provisioning gives its agent (as
    playbooks/vars/stack.yml computes it). Without an inventory on this machine: the client's tier in the ledger."""
    try:
        if inventories is None:
            raise InventoryError("no inventories given")
        inv = inventory.load(inventories, client.name)
    except InventoryError:
        return {h.name: _tier_interval(client.tier, None) for h in client.hosts}
    result = {}
    for h in inv.hosts:
        hv = host_vars(inv, h.name)
        try:
            result[h.name] = _tier_interval(
                hv.get("sentry_tier") or inv.tier or client.tier, hv.get("sentry_tier_overrides")
            )
        except (TypeError, ValueError) as exc:
            raise InventoryError(
                f"inventory of {client.name} has a malformed heartbeat interval for host {h.name}: {exc}",
                hint=f"check sentry_tier_overrides in {inv.path / 'group_vars' / 'all.yml'} and host_vars/{h.name}.yml",
            ) from exc
    return result


@dataclass(frozen=True)
class HostStatus:
    client: str
    host: str
    state: str
    expected_interval_seconds: float
    last_heartbeat: _dt.datetime | None
    age_seconds: float | None
    version: str | None
    rules_digest: str | None
    spool_records: int | None
    alerts_last_hour: int
    # The defence pack the last heartbeat reports active, and the one the ledger assigns the host: "yes" when they
    # agree, "no" when not (still swapping, refused, or the agent is behind), "" when neither names a pack.
    pack_version: str | None = None
    pack_digest: str | None = None
    pack_status: str | None = None
    assigned_version: str | None = None
    assigned_digest: str | None = None
    pack_matches: str = ""


def pack_match(reported: str | None, assigned: str | None) -> str:
    if reported is None and assigned is None:
        return ""
    return "yes" if reported == assigned else "no"


def status(
    ledger: Ledger, client: str | None = None, now: _dt.datetime | None = None, *, inventories: Path | None = None
) -> list[HostStatus]:
    """Every live host the ledger knows (of one client or all), plus any host that reported and is gone since."""
    now = now or _dt.datetime.now(_dt.UTC)
    clients = [c for c in ledger.clients() if client is None or c.name == client]
    if client is not None and not clients:
        raise ConfigError(f"client {client!r} is not in the ledger", hint="see 'sentryctl client list'")
    intervals = {(c.name, host): v for c in clients for host, v in expected_intervals(inventories, c).items()}
    # A host gone from the inventory (or a client gone from the ledger) is judged by the default cadence.
    beats = {(b.client, b.host): b for b in ledger.latest_heartbeats(client)}
    counts = ledger.alert_counts(now - _dt.timedelta(hours=1), client)
    assigned = {(a.client, a.host): a for a in ledger.assignments(client)}
    keys = {(c.name, h.name) for c in clients for h in c.hosts} | set(beats)
    result = []
    for key in sorted(keys):
        last = beats.get(key)
        result.append(
            HostStatus(
                client=key[0],
                host=key[1],
                state=host_state(last, now, intervals.get(key, DEFAULT_INTERVAL_SECONDS)),
                expected_interval_seconds=intervals.get(key, DEFAULT_INTERVAL_SECONDS),
                last_heartbeat=last.received_at if last else None,
                age_seconds=round((now - last.received_at).total_seconds(), 1) if last else None,
                version=last.version if last else None,
                rules_digest=last.rules_digest if last else None,
                spool_records=last.spool_records if last else None,
                alerts_last_hour=counts.get(key, 0),
                pack_version=last.pack_version if last else None,
                pack_digest=last.pack_digest if last else None,
                pack_status=last.pack_status if last else None,
                assigned_version=assigned[key].version if key in assigned else None,
                assigned_digest=assigned[key].digest if key in assigned else None,
                pack_matches=pack_match(
                    last.pack_digest if last else None, assigned[key].digest if key in assigned else None
                ),
            )
        )
    return result


def alerts(
    ledger: Ledger, client: str, *, host: str | None = None, since: _dt.timedelta | None = None, limit: int = 1000
) -> list[AlertRecord]:
    start = _dt.datetime.now(_dt.UTC) - since if since is not None else None
    return ledger.telemetry_alerts(client, host=host, since=start, limit=limit)
