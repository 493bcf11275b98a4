"""One client's figures over a period: what the report and the portal show.

:func:`figures` asks the ledger for aggregates (SQL does the counting, see :mod:`orchestrator.ledger.analytics`)
and shapes them into :class:`Figures`. Every figure set names its inputs (row counts in the range, the range,
the ledger chain's head when it was computed) so anyone holding the ledger can recompute it and see whether
anything changed since.
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from ..incidents.response import Compliance, summarize, verdict
from ..ledger import Ledger
from ..ledger.analytics import AlertBucket, BanRow, DropRow, InputCounts, ReleaseRow, RolloutRow, SourceRow
from ..ledger.incidents import IncidentRecord
from ..tiers import load_tiers
from .errors import AnalyticsError
from .period import Period

FORMAT = "sentry-analytics/1"
TIME_TO_BAN_UNAVAILABLE = (
    "not available: an alert carries the time of the ban only, not the time of the first malicious log line "
    "(the detection window of the rule, window_seconds, bounds it)"
)


@dataclass(frozen=True)
class Uptime:
    host: str
    heartbeats: int
    expected: int
    share: float | None  # None when nothing was expected (the host was added after the period)
    interval_seconds: float
    last_heartbeat: _dt.datetime | None


@dataclass(frozen=True)
class Drift:
    audit: str | None
    finished_at: _dt.datetime | None
    hosts: dict[str, str] = field(default_factory=dict)  # host -> drift | error, the open findings

    @property
    def open(self) -> int:
        return len(self.hosts)


@dataclass(frozen=True)
class Figures:
    client: str
    host: str | None
    period: Period
    computed_at: _dt.datetime
    inputs: InputCounts
    alerts: list[AlertBucket]
    sources: list[SourceRow]
    bans: list[BanRow]
    bans_active_now: int | None
    drops: list[DropRow]
    uptime: list[Uptime]
    releases: list[ReleaseRow]
    rollouts: list[RolloutRow]
    drift: Drift
    incidents: list[IncidentRecord] = field(default_factory=list)  # opened in the period
    response: Compliance | None = None  # response-time compliance of those incidents
    time_to_ban: str = TIME_TO_BAN_UNAVAILABLE

    @property
    def empty(self) -> bool:
        """No telemetry at all in the period: the client's agents have not reported (yet)."""
        return self.inputs.alerts == 0 and self.inputs.heartbeats == 0

    # ------------------------------------------------------------------------------------------ derived views

    def alert_total(self) -> int:
        return sum(b.alerts for b in self.alerts)

    def alerts_per_day(self) -> list[tuple[str, dict[str, int]]]:
        """Every day of the period with its alert count per severity (zero days included: the chart's axis)."""
        by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for b in self.alerts:
            by_day[b.day][b.severity] += b.alerts
        return [(day, dict(by_day.get(day, {}))) for day in self.period.days]

    def alerts_by_rule(self) -> list[tuple[str, int]]:
        totals: dict[str, int] = defaultdict(int)
        for b in self.alerts:
            totals[b.rule] += b.alerts
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))

    def bans_issued(self) -> int:
        return sum(b.issued for b in self.bans)

    def bans_active_at_end(self) -> int:
        return sum(b.active_at_end for b in self.bans)

    def dropped(self) -> tuple[int, int]:
        return sum(d.packets for d in self.drops), sum(d.bytes for d in self.drops)

    def drops_per_host(self) -> list[tuple[str, int, int]]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for d in self.drops:
            totals[d.host][0] += d.packets
            totals[d.host][1] += d.bytes
        return [(h, p, b) for h, (p, b) in sorted(totals.items())]

    # ------------------------------------------------------------------------------------------ exports

    def tables(self) -> dict[str, tuple[list[str], list[list[Any]]]]:
        """Every figure as a table (its CSV): name -> (header, rows)."""
        return {
            "alerts": (
                ["day", "rule", "severity", "alerts"],
                [[b.day, b.rule, b.severity, b.alerts] for b in self.alerts],
            ),
            "top_sources": (
                ["ip", "alerts", "matches", "hosts", "first_seen", "last_seen"],
                [[s.ip, s.alerts, s.matches, s.hosts, _iso(s.first_seen), _iso(s.last_seen)] for s in self.sources],
            ),
            "bans": (
                ["ban_seconds", "issued", "active_at_end", "expired"],
                [[b.ban_seconds, b.issued, b.active_at_end, b.issued - b.active_at_end] for b in self.bans],
            ),
            "dropped": (["host", "day", "packets", "bytes"], [[d.host, d.day, d.packets, d.bytes] for d in self.drops]),
            "uptime": (
                ["host", "heartbeats", "expected", "share", "interval_seconds", "last_heartbeat"],
                [
                    [u.host, u.heartbeats, u.expected, u.share, u.interval_seconds, _iso(u.last_heartbeat)]
                    for u in self.uptime
                ],
            ),
            "releases": (
                ["at", "host", "release_version", "previous_release_version"],
                [[r.at, r.host, r.release_version, r.previous_release_version] for r in self.releases],
            ),
            "rollouts": (
                ["uid", "release_version", "state", "created_at", "hosts"],
                [[r.uid, r.release_version, r.state, _iso(r.created_at), r.hosts] for r in self.rollouts],
            ),
            "drift": (
                ["audit", "finished_at", "host", "status"],
                [[self.drift.audit, _iso(self.drift.finished_at), h, s] for h, s in sorted(self.drift.hosts.items())],
            ),
            "incidents": (
                ["id", "kind", "severity", "hosts", "opened_at", "due_at", "acked_at", "resolved_at", "response"],
                [
                    [
                        i.id,
                        i.kind,
                        i.severity,
                        " ".join(i.hosts),
                        _iso(i.opened_at),
                        _iso(i.due_at),
                        _iso(i.acked_at),
                        _iso(i.resolved_at),
                        verdict(i, self.computed_at),
                    ]
                    for i in self.incidents
                ],
            ),
            "time_to_ban": (["status"], [[self.time_to_ban]]),
        }

    def to_json(self) -> dict[str, Any]:
        packets, octets = self.dropped()
        return {
            "format": FORMAT,
            "client": self.client,
            "host": self.host,
            "period": {"label": self.period.label, "start": _iso(self.period.start), "end": _iso(self.period.end)},
            "computed_at": _iso(self.computed_at),
            "inputs": {
                "telemetry_alerts": self.inputs.alerts,
                "telemetry_heartbeats": self.inputs.heartbeats,
                "events": self.inputs.events,
                "range": {"start": _iso(self.period.start), "end": _iso(self.period.end), "by": "received_at"},
                "chain_head": {"seq": self.inputs.chain_seq, "hash": self.inputs.chain_head},
            },
            "empty": self.empty,
            "summary": {
                "alerts": self.alert_total(),
                "bans_issued": self.bans_issued(),
                "bans_active_at_end": self.bans_active_at_end(),
                "bans_expired": self.bans_issued() - self.bans_active_at_end(),
                "bans_active_now": self.bans_active_now,
                "packets_dropped": packets,
                "bytes_dropped": octets,
                "open_drift": self.drift.open,
            },
            "alerts": [asdict(b) for b in self.alerts],
            "alerts_by_rule": dict(self.alerts_by_rule()),
            "top_sources": [
                {**asdict(s), "first_seen": _iso(s.first_seen), "last_seen": _iso(s.last_seen)} for s in self.sources
            ],
            "bans": [asdict(b) for b in self.bans],
            "dropped": [asdict(d) for d in self.drops],
            "uptime": [{**asdict(u), "last_heartbeat": _iso(u.last_heartbeat)} for u in self.uptime],
            "releases": [asdict(r) for r in self.releases],
            "rollouts": [{**asdict(r), "created_at": _iso(r.created_at)} for r in self.rollouts],
            "drift": {
                "audit": self.drift.audit,
                "finished_at": _iso(self.drift.finished_at),
                "hosts": dict(sorted(self.drift.hosts.items())),
            },
            "incidents": [
                {
                    "id": i.id,
                    "kind": i.kind,
                    "severity": i.severity,
                    "title": i.title,
                    "hosts": list(i.hosts),
                    "opened_at": _iso(i.opened_at),
                    "due_at": _iso(i.due_at),
                    "acked_at": _iso(i.acked_at),
                    "resolved_at": _iso(i.resolved_at),
                    "response": verdict(i, self.computed_at),
                }
                for i in self.incidents
            ],
            "response": None if self.response is None else self.response.as_dict(),
            "time_to_ban": {"available": False, "reason": self.time_to_ban},
        }


def _iso(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def figures(
    ledger: Ledger, client: str, period: Period, host: str | None = None, *, now: _dt.datetime | None = None
) -> Figures:
    """The figures of ``client`` (one of its hosts) over ``period``. Unknown client or host: AnalyticsError.
    A client with no telemetry gets figures all zero and ``empty`` true, not an error."""
    record = ledger.client(client)
    if record is None:
        raise AnalyticsError(f"no client {client!r} in the ledger", hint="see: sentryctl client list")
    hosts = {h.name: h for h in ledger.hosts(client, include_removed=True)}
    if host is not None and host not in hosts:
        raise AnalyticsError(f"{host!r} is not a host of client {client!r}")
    start, end = period.start, period.end
    # The three scans of the range run side by side (each on its own connection; both databases serve readers
    # concurrently and the drivers release the GIL while a query runs): the report's time is the longest one.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="figures") as pool:
        summary = pool.submit(ledger.alert_summary, client, start, end, host)
        sources = pool.submit(ledger.top_sources, client, start, end, host)
        drops = pool.submit(ledger.drop_rows, client, start, end, host)
        inputs = ledger.analytics_inputs(client, start, end, host)
        beats = ledger.heartbeat_rows(client, start, end, host)
        buckets, bans = summary.result()
    tier = load_tiers().get(record.tier)
    computed_at = now or _dt.datetime.now(_dt.UTC)
    # Incidents opened in the period (those naming the host, when one is asked for), oldest first, and how fast they
    # were answered.
    found = ledger.incidents(client, opened_from=start, opened_before=end)
    opened = sorted((i for i in found if host is None or host in i.hosts), key=lambda i: (i.opened_at, i.id))
    return Figures(
        client=client,
        host=host,
        period=period,
        computed_at=computed_at,
        inputs=inputs,
        alerts=buckets,
        sources=sources.result(),
        bans=bans,
        bans_active_now=(
            sum(b.bans_active_last or 0 for b in beats) if any(b.bans_active_last is not None for b in beats) else None
        ),
        drops=drops.result(),
        uptime=_uptime(period, hosts, beats, tier.heartbeat_interval_seconds if tier else None, host),
        releases=[r for r in ledger.release_rows(client, start, end) if host is None or r.host == host],
        rollouts=ledger.rollout_rows(client, start, end),
        drift=_drift(ledger, client, end, host),
        incidents=opened,
        response=summarize(client, period.label, opened, computed_at),
    )


def _uptime(
    period: Period, hosts: dict[str, Any], beats: list[Any], tier_interval: float | None, only: str | None
) -> list[Uptime]:
    """Share of the heartbeats expected at the tier's interval that arrived, per host, over the part of the
    period the host was in the inventory."""
    seen = {b.host: b for b in beats}
    out = []
    for name in sorted(set(seen) | {h for h, r in hosts.items() if r.removed_at is None}):
        if only is not None and name != only:
            continue
        beat = seen.get(name)
        interval = float(tier_interval or (beat.max_interval_seconds if beat else None) or 60.0)
        record = hosts.get(name)
        begin = max(period.start, record.added_at) if record else period.start
        finish = min(period.end, record.removed_at) if record and record.removed_at else period.end
        expected = max(0, int((finish - begin).total_seconds() // interval))
        received = beat.heartbeats if beat else 0
        share = None if expected == 0 else min(1.0, received / expected)
        out.append(Uptime(name, received, expected, share, interval, beat.last if beat else None))
    return out


def _drift(ledger: Ledger, client: str, end: _dt.datetime, host: str | None) -> Drift:
    """The findings of the last audit finished before the period's end: hosts in drift or not audited."""
    for audit in ledger.audits(client, limit=50):
        if audit.finished_at < end:
            found = {h: s for h, s in audit.hosts.items() if s != "compliant" and (host is None or h == host)}
            return Drift(audit.uid, audit.finished_at, found)
    return Drift(None, None, {})
