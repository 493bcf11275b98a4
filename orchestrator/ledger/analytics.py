"""Read-only aggregates of one client's telemetry over a time range, for :mod:`orchestrator.analytics`.

Every query is scoped to one client (and optionally one host) and one ``received_at`` range, so it runs on the
(client, received_at) and (client, host, received_at) indexes of the record tables, and aggregates in SQL: the
rows never travel to Python, however long the range. The few expressions the two databases spell differently
(a UTC day) are chosen per dialect here.
"""

# The SQL below is put together from fragments chosen in this module (per dialect) and column names; every value
# (client, host, times) is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from .base import LedgerMixin
from .chain import GENESIS_HASH, utc_stamp
from .models import Event, Rollout, RolloutHost, TelemetryAlert, TelemetryHeartbeat, UTCDateTime

BAN_ACTIONS = ("banned", "recorded")
# How far before the range a heartbeat is looked for, as the baseline of the first drop counters in the range.
COUNTER_LOOKBACK = _dt.timedelta(days=1)


@dataclass(frozen=True)
class AlertBucket:
    day: str
    rule: str
    severity: str
    alerts: int


@dataclass(frozen=True)
class SourceRow:
    ip: str
    alerts: int
    matches: int
    hosts: int
    first_seen: _dt.datetime
    last_seen: _dt.datetime


@dataclass(frozen=True)
class BanRow:
    """Bans the agents issued (``action`` banned or recorded) with one ban duration, and how many of them were
    still running at the end of the range."""

    ban_seconds: int | None
    issued: int
    active_at_end: int


@dataclass(frozen=True)
class DropRow:
    host: str
    day: str
    packets: int
    bytes: int


@dataclass(frozen=True)
class HeartbeatRow:
    host: str
    heartbeats: int
    first: _dt.datetime
    last: _dt.datetime
    max_interval_seconds: float | None
    bans_active_last: int | None


@dataclass(frozen=True)
class ReleaseRow:
    at: str
    host: str
    release_version: str
    previous_release_version: str | None


@dataclass(frozen=True)
class RolloutRow:
    uid: str
    release_version: str
    state: str
    created_at: _dt.datetime
    hosts: int


@dataclass(frozen=True)
class InputCounts:
    """What a figure set was computed from: enough to recompute it and to see that nothing changed since."""

    alerts: int
    heartbeats: int
    events: int
    chain_seq: int
    chain_head: str


def _day(dialect: str, column: str) -> str:
    if dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
        return f"substr({column}, 1, 10)"
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _times(**values: _dt.datetime) -> list[Any]:
    return [bindparam(name, value, type_=UTCDateTime()) for name, value in values.items()]


class AnalyticsMixin(LedgerMixin):
    """Per-client aggregates; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def _scope(self, table: str, host: str | None) -> str:
        where = f"{table}.client = :client AND {table}.received_at >= :start AND {table}.received_at < :end"
        return where + (f" AND {table}.host = :host" if host is not None else "")

    def _run(self, session: Session, sql: str, params: dict[str, Any], **times: _dt.datetime) -> list[Any]:
        statement = text(sql).bindparams(*_times(**times))
        return list(session.execute(statement, params))

    def alert_summary(
        self, client: str, start: _dt.datetime, end: _dt.datetime, host: str | None = None
    ) -> tuple[list[AlertBucket], list[BanRow]]:
        """Alerts per UTC day (by receive time), rule and severity; and the bans issued (action banned or recorded)
        per ban duration, with how many were still running at ``end``. One scan of the range groups by all of it
        (the groups are few: days x rules x severities x actions x durations); the running bans are then counted
        per duration on the index, over the last ``duration`` seconds before ``end`` only (by receive time: the
        collector's clock, not the hosts')."""
        with self._read() as session:
            dialect = session.bind.dialect.name  # type: ignore[union-attr]
            day = _day(dialect, "received_at")
            seconds = "ban_seconds"
            params: dict[str, Any] = {"client": client, "host": host}
            groups = self._run(
                session,
                f"SELECT {day} AS day, coalesce(rule, '?') AS rule, severity, action, {seconds} AS s, count(*)"
                f" FROM telemetry_alerts WHERE {self._scope('telemetry_alerts', host)}"
                " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3",
                params,
                start=start,
                end=end,
            )
            buckets: dict[tuple[str, str, str], int] = {}
            issued: dict[int | None, int] = {}
            for d, rule, severity, action, duration, n in groups:
                key = (str(d), str(rule), str(severity))
                buckets[key] = buckets.get(key, 0) + int(n)
                if action in BAN_ACTIONS:
                    span = None if duration is None else int(duration)
                    issued[span] = issued.get(span, 0) + int(n)
            bans = []
            for duration, count in sorted(issued.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
                active = 0
                if duration is not None:
                    since = max(start, end - _dt.timedelta(seconds=duration))
                    active = self._run(
                        session,
                        f"SELECT count(*) FROM telemetry_alerts WHERE {self._scope('telemetry_alerts', host)}"
                        f" AND action IN ('banned', 'recorded') AND {seconds} = :seconds",
                        {**params, "seconds": duration},
                        start=since,
                        end=end,
                    )[0][0]
                bans.append(BanRow(duration, count, int(active)))
        return [AlertBucket(d, r, sv, n) for (d, r, sv), n in sorted(buckets.items())], bans

    def top_sources(
        self, client: str, start: _dt.datetime, end: _dt.datetime, host: str | None = None, limit: int = 10
    ) -> list[SourceRow]:
        """The addresses with the most alerts, first and last seen by the hosts' clocks."""
        al = TelemetryAlert
        query = (
            select(
                al.ip,
                func.count(),
                func.coalesce(func.sum(al.count), 0),
                func.count(func.distinct(al.host)),
                func.min(al.host_time),
                func.max(al.host_time),
            )
            .where(al.client == client, al.received_at >= start, al.received_at < end, al.ip.is_not(None))
            .group_by(al.ip)
            .order_by(func.count().desc(), al.ip)
            .limit(limit)
        )
        if host is not None:
            query = query.where(al.host == host)
        with self._read() as session:
            rows = session.execute(query).all()
        return [
            SourceRow(str(ip), int(n), int(m or 0), int(h), _aware(first), _aware(last))
            for ip, n, m, h, first, last in rows
        ]

    def drop_rows(self, client: str, start: _dt.datetime, end: _dt.datetime, host: str | None = None) -> list[DropRow]:
        """Packets and bytes the firewall dropped, per host and UTC day, from the heartbeats' cumulative counters.

        Counters restart at zero when the host reboots or the ruleset is loaded again: a value below the previous
        one is a reset, and counts as what was dropped since it (the value itself). The first heartbeat in the
        range takes its baseline from the last one within :data:`COUNTER_LOOKBACK` before it; a host with none
        counts its first value whole (its firewall was loaded since)."""
        with self._read() as session:
            dialect = session.bind.dialect.name  # type: ignore[union-attr]
            day = _day(dialect, "received_at")
            host_filter = " AND host = :host" if host is not None else ""
            rows = self._run(
                session,
                f"""
                WITH hb AS (
                    SELECT host, received_at, id, fw_packets AS p, fw_bytes AS b FROM telemetry_heartbeats
                    WHERE client = :client AND received_at >= :lookback AND received_at < :end{host_filter}
                      AND fw_packets IS NOT NULL
                ), d AS (
                    SELECT host, received_at, p, b,
                           lag(p) OVER (PARTITION BY host ORDER BY received_at, id) AS pp,
                           lag(b) OVER (PARTITION BY host ORDER BY received_at, id) AS pb
                    FROM hb
                )
                SELECT host, {day} AS day,
                       sum(CASE WHEN pp IS NULL OR p < pp THEN p ELSE p - pp END),
                       sum(CASE WHEN pb IS NULL OR b < pb THEN b ELSE b - pb END)
                FROM d WHERE received_at >= :start GROUP BY 1, 2 ORDER BY 1, 2
                """,
                {"client": client, "host": host},
                start=start,
                end=end,
                lookback=start - COUNTER_LOOKBACK,
            )
        return [DropRow(str(h), str(d), int(p or 0), int(b or 0)) for h, d, p, b in rows]

    def heartbeat_rows(
        self, client: str, start: _dt.datetime, end: _dt.datetime, host: str | None = None
    ) -> list[HeartbeatRow]:
        """Heartbeats received per host, and the bans active the last one reported."""
        hb = TelemetryHeartbeat
        scope = [hb.client == client, hb.received_at >= start, hb.received_at < end]
        if host is not None:
            scope.append(hb.host == host)
        query = (
            select(
                hb.host,
                func.count(),
                func.min(hb.received_at),
                func.max(hb.received_at),
                func.max(hb.interval_seconds),
                func.max(hb.id),
            )
            .where(*scope)
            .group_by(hb.host)
            .order_by(hb.host)
        )
        with self._read() as session:
            rows = session.execute(query).all()
            last_ids = [r[5] for r in rows]
            bans = dict(session.execute(select(hb.id, hb.bans_active).where(hb.id.in_(last_ids))).all())
        return [
            HeartbeatRow(str(h), int(n), _aware(first), _aware(last), interval, bans.get(last_id))
            for h, n, first, last, interval, last_id in rows
        ]

    def release_rows(self, client: str, start: _dt.datetime, end: _dt.datetime) -> list[ReleaseRow]:
        """Releases recorded on the client's hosts in the range (the chain's ``host.release_set`` events)."""
        query = (
            select(Event.at, Event.subject, Event.payload)
            .where(
                Event.client == client,
                Event.kind == "host.release_set",
                Event.at >= utc_stamp(start),
                Event.at < utc_stamp(end),
            )
            .order_by(Event.seq)
        )
        with self._read() as session:
            rows = session.execute(query).all()
        out = []
        for at, subject, payload in rows:
            body = json.loads(payload)
            out.append(
                ReleaseRow(
                    str(at), str(subject), str(body.get("release_version")), body.get("previous_release_version")
                )
            )
        return out

    def rollout_rows(self, client: str, start: _dt.datetime, end: _dt.datetime) -> list[RolloutRow]:
        """Rollouts created in the range that took hosts of the client."""
        query = (
            select(Rollout.uid, Rollout.release_version, Rollout.state, Rollout.created_at, func.count(RolloutHost.id))
            .join(RolloutHost, RolloutHost.rollout_id == Rollout.id)
            .where(RolloutHost.client == client, Rollout.created_at >= start, Rollout.created_at < end)
            .group_by(Rollout.uid, Rollout.release_version, Rollout.state, Rollout.created_at)
            .order_by(Rollout.created_at)
        )
        with self._read() as session:
            rows = session.execute(query).all()
        return [RolloutRow(str(u), str(v), str(s), _aware(c), int(n)) for u, v, s, c, n in rows]

    def analytics_inputs(
        self, client: str, start: _dt.datetime, end: _dt.datetime, host: str | None = None
    ) -> InputCounts:
        """Row counts in the range and the chain head, read in one transaction with nothing else in between."""
        counts = []
        with self._read() as session:
            for model in (TelemetryAlert, TelemetryHeartbeat):
                where = [model.client == client, model.received_at >= start, model.received_at < end]
                if host is not None:
                    where.append(model.host == host)
                counts.append(int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0))
            events = session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.client == client, Event.at >= utc_stamp(start), Event.at < utc_stamp(end))
            )
            head = session.execute(select(Event.seq, Event.hash).order_by(Event.seq.desc()).limit(1)).first()
        seq, digest = (int(head[0]), str(head[1])) if head else (0, GENESIS_HASH)
        return InputCounts(counts[0], counts[1], int(events or 0), seq, digest)


def _aware(value: Any) -> _dt.datetime:
    """Aggregates (min, max) come back without the column type on SQLite: parse and mark them UTC."""
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value)
    assert isinstance(value, _dt.datetime)
    return value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)
