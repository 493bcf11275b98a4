"""What defence pushes read of telemetry, and the collective-defence proposals.

The push gates read each host's heartbeats since its assignment (the pack fields from the stored record, so that
``pack_refused_digest`` and ``pack_error``, which have no column, are read the same way as the rest) and its bans
per host; ``defence proposals`` reads the addresses banned at several clients and records each proposal once
(event ``defence.proposed``, subject: the network; ``defence.proposal_pushed`` when a collective pack carried it).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from .base import LedgerMixin
from .chain import utc_stamp
from .defence_models import DefenceProposal
from .models import TelemetryAlert, TelemetryHeartbeat

BAN_ACTIONS = ("banned", "recorded")


@dataclass(frozen=True)
class PushBeat:
    """What the push gates read of one heartbeat (``refused_digest`` from the record itself: it has no column)."""

    client: str
    host: str
    received_at: _dt.datetime
    event: str | None
    status: str | None
    pack_version: str | None
    pack_digest: str | None
    pack_status: str | None
    refused_digest: str | None
    pack_error: str | None
    detect_us_per_line: float | None


@dataclass(frozen=True)
class BannedSource:
    """One address banned (or recorded) by agents: at which clients, how often, first and last seen."""

    ip: str
    clients: tuple[str, ...]
    bans: int
    first_seen: _dt.datetime
    last_seen: _dt.datetime


@dataclass(frozen=True)
class ProposalRecord:
    id: int
    net: str
    clients: tuple[str, ...]
    bans: int
    first_seen: _dt.datetime
    last_seen: _dt.datetime
    proposed_at: _dt.datetime
    expires_at: _dt.datetime
    pushed_version: str | None
    actor: str


class DefenceSignalsMixin(LedgerMixin):
    """Telemetry reads of the push gates and the proposals; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def push_beats(self, client: str, hosts: Sequence[str], since: _dt.datetime) -> dict[str, list[PushBeat]]:
        """Per host, its heartbeats received since ``since`` plus the last one before (what a gap is measured
        from), oldest first."""
        hb = TelemetryHeartbeat
        out: dict[str, list[PushBeat]] = {h: [] for h in hosts}
        if not hosts:
            return out
        with self._read() as session:
            rows = session.scalars(
                select(hb)
                .where(hb.client == client, hb.host.in_(list(hosts)), hb.received_at >= since)
                .order_by(hb.received_at, hb.id)
            ).all()
            before = session.execute(
                select(hb.host, func.max(hb.id))
                .where(hb.client == client, hb.host.in_(list(hosts)), hb.received_at < since)
                .group_by(hb.host)
            ).all()
            earlier = session.scalars(select(hb).where(hb.id.in_([i for _, i in before]))).all() if before else []
            for row in [*earlier, *rows]:
                out[row.host].append(_beat(row))
        for beats in out.values():
            beats.sort(key=lambda b: b.received_at)
        return out

    def ban_counts(
        self, client: str, hosts: Sequence[str], since: _dt.datetime, until: _dt.datetime | None = None
    ) -> dict[str, int]:
        """Per host, the alerts with action ``banned`` received in [since, until)."""
        al = TelemetryAlert
        query = (
            select(al.host, func.count())
            .where(al.client == client, al.host.in_(list(hosts)), al.action == "banned", al.received_at >= since)
            .group_by(al.host)
        )
        if until is not None:
            query = query.where(al.received_at < until)
        with self._read() as session:
            found = {h: int(n) for h, n in session.execute(query)}
        return {h: found.get(h, 0) for h in hosts}

    def banned_sources(self, since: _dt.datetime) -> list[BannedSource]:
        """Every address banned or recorded by an agent since ``since``: at which clients, how often."""
        al = TelemetryAlert
        query = (
            select(al.ip, al.client, func.count(), func.min(al.received_at), func.max(al.received_at))
            .where(al.received_at >= since, al.action.in_(BAN_ACTIONS), al.ip.is_not(None))
            .group_by(al.ip, al.client)
        )
        per_ip: dict[str, list[tuple[str, int, _dt.datetime, _dt.datetime]]] = {}
        with self._read() as session:
            for ip, client, count, first, last in session.execute(query):
                per_ip.setdefault(str(ip), []).append((client, int(count), _aware(first), _aware(last)))
        return [
            BannedSource(
                ip=ip,
                clients=tuple(sorted(c for c, _, _, _ in rows)),
                bans=sum(n for _, n, _, _ in rows),
                first_seen=min(f for _, _, f, _ in rows),
                last_seen=max(la for _, _, _, la in rows),
            )
            for ip, rows in sorted(per_ip.items())
        ]

    # ------------------------------------------------------------------------------------------- proposals

    def record_proposals(
        self,
        found: Sequence[BannedSource],
        *,
        nets: Mapping[str, str],
        expires_at: _dt.datetime,
        actor: str | None = None,
    ) -> list[ProposalRecord]:
        """Record each source (as its network ``nets[ip]``) once: a network with an unexpired proposal is not
        proposed again. One ``defence.proposed`` event each; returns the new ones."""
        with self._write(actor) as tx:
            live = set(tx.session.scalars(select(DefenceProposal.net).where(DefenceProposal.expires_at > tx.now)).all())
            made: list[DefenceProposal] = []
            for source in found:
                net = nets[source.ip]
                if net in live:
                    continue
                live.add(net)
                row = DefenceProposal(
                    net=net,
                    clients=list(source.clients),
                    bans=source.bans,
                    first_seen=source.first_seen,
                    last_seen=source.last_seen,
                    proposed_at=tx.now,
                    expires_at=expires_at,
                    pushed_version=None,
                    actor=tx.actor,
                )
                tx.session.add(row)
                made.append(row)
                tx.append(
                    "defence.proposed",
                    None,
                    net,
                    {"clients": list(source.clients), "bans": source.bans, "expires_at": utc_stamp(expires_at)},
                )
            tx.session.flush()
            return [_proposal(r) for r in made]

    def proposals(self, *, active_at: _dt.datetime | None = None) -> list[ProposalRecord]:
        """Every proposal (with ``active_at``: only those not expired then), oldest first."""
        query = select(DefenceProposal).order_by(DefenceProposal.id)
        if active_at is not None:
            query = query.where(DefenceProposal.expires_at > active_at)
        with self._read() as session:
            return [_proposal(r) for r in session.scalars(query)]

    def mark_proposals_pushed(self, ids: Sequence[int], version: str, *, actor: str | None = None) -> None:
        with self._write(actor) as tx:
            for row in tx.session.scalars(select(DefenceProposal).where(DefenceProposal.id.in_(list(ids)))):
                row.pushed_version = version
                tx.append("defence.proposal_pushed", None, row.net, {"version": version})


def _aware(value: _dt.datetime) -> _dt.datetime:
    # Aggregates bypass the column type's conversion on SQLite (naive, or even text): read them back as UTC.
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)


def _beat(r: TelemetryHeartbeat) -> PushBeat:
    raw = r.raw or {}

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) else None

    detect = raw.get("detect_us_per_line")
    return PushBeat(
        client=r.client,
        host=r.host,
        received_at=r.received_at,
        event=r.event,
        status=r.status,
        pack_version=text("pack_version"),
        pack_digest=text("pack_digest"),
        pack_status=text("pack_status"),
        refused_digest=text("pack_refused_digest"),
        pack_error=text("pack_error"),
        detect_us_per_line=float(detect) if isinstance(detect, int | float) and not isinstance(detect, bool) else None,
    )


def _proposal(r: DefenceProposal) -> ProposalRecord:
    return ProposalRecord(
        id=r.id,
        net=r.net,
        clients=tuple(r.clients),
        bans=r.bans,
        first_seen=r.first_seen,
        last_seen=r.last_seen,
        proposed_at=r.proposed_at,
        expires_at=r.expires_at,
        pushed_version=r.pushed_version,
        actor=r.actor,
    )
