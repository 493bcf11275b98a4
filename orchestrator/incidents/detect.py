"""Detection as a pure function: the records that arrived since the last pass (and the hosts silent now) in,
the incidents to open or merge out. No clock of its own and no I/O: :mod:`.engine` feeds it.

Dedup keys (unique per client among open incidents, see :mod:`orchestrator.ledger.incidents`):

- ``attack:<rule>`` for alerts of a rule marked ``critical``: one attack, however many alerts, addresses and
  hosts, is one incident while it is open (an agent raises one alert per address it bans, so a distributed
  attack of 500 addresses is 500 alerts: keyed by address it would page 500 times); a new one after it is
  resolved;
- ``silent:<host>:<last heartbeat>`` (``once``): one incident per silence, opened once even if resolved while
  the host stays silent; the host reporting again and falling silent later is a new silence;
- ``rollout_halted:<rollout>`` for a rollout that halted (``once``: the halt is one event);
- ``push_halted:<push>`` for a defence push that halted at a gate (``once``; its hosts were reverted, but the pack
  that broke a canary needs a person before anyone pushes it again);
- ``audit_drift`` per client: audits finding drift merge into the open drift incident.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..ledger.incidents import IncidentSpec
from .policy import policy_for

CRITICAL = "critical"


@dataclass(frozen=True)
class AlertIn:
    client: str
    host: str
    rule: str | None
    ip: str | None
    severity: str


@dataclass(frozen=True)
class EventIn:
    kind: str
    client: str | None
    subject: str | None
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class SilentHost:
    client: str
    host: str
    last_heartbeat: _dt.datetime


@dataclass
class _Found:
    kind: str
    severity: str
    title: str
    hosts: set[str]
    occurrences: int
    once: bool
    detail: dict[str, Any]


def detect(
    alerts: Sequence[AlertIn],
    events: Sequence[EventIn],
    silent: Sequence[SilentHost],
    tiers: Mapping[str, str],
    now: _dt.datetime,
) -> list[IncidentSpec]:
    """The incidents these inputs call for, one spec per (client, dedup key), in a stable order. ``tiers`` maps
    each live client to its tier; anything of a client not in it (removed since) is ignored."""
    found: dict[tuple[str, str], _Found] = {}

    def add(client: str, key: str, new: _Found) -> None:
        if client not in tiers:
            return
        have = found.get((client, key))
        if have is None:
            found[(client, key)] = new
            return
        have.hosts |= new.hosts
        have.occurrences += new.occurrences

    for a in alerts:
        if a.severity != CRITICAL:
            continue
        rule = a.rule or "unknown-rule"
        detail = {"rule": rule, "first_address": a.ip}
        add(a.client, f"attack:{rule}", _Found("attack", CRITICAL, f"{rule} attack", {a.host}, 1, False, detail))
    for e in events:
        if e.client is None:
            continue
        if e.kind == "rollout.state" and e.payload.get("to") == "halted":
            uid = e.subject or "?"
            title = f"rollout {uid} halted"
            add(e.client, f"rollout_halted:{uid}", _Found("rollout_halted", "high", title, set(), 1, True, {}))
        elif e.kind == "defence.push_state" and e.payload.get("to") == "halted":
            uid = e.subject or "?"
            why = e.payload.get("halt_reason")
            title = f"defence push {uid} halted" + (f": {why}" if isinstance(why, str) and why else "")
            detail = {"push": uid}
            add(e.client, f"push_halted:{uid}", _Found("push_halted", "high", title[:300], set(), 1, True, detail))
        elif e.kind == "audit.recorded" and e.payload.get("result") == "drift":
            hosts = e.payload.get("hosts")
            drifted = {h for h, s in hosts.items() if s == "drift"} if isinstance(hosts, dict) else set()
            detail = {"audit": e.subject}
            add(
                e.client,
                "audit_drift",
                _Found("audit_drift", "high", "an audit found drift", drifted, 1, False, detail),
            )
    for s in silent:
        key = f"silent:{s.host}:{s.last_heartbeat.astimezone(_dt.UTC).isoformat()}"
        title = f"host {s.host} is silent"
        detail = {"last_heartbeat": s.last_heartbeat.isoformat()}
        add(s.client, key, _Found("silent_host", "high", title, {s.host}, 1, True, detail))

    return [
        IncidentSpec(
            client=client,
            tier=tiers[client],
            kind=f.kind,
            severity=f.severity,
            dedup_key=key[:255],
            title=f.title,
            hosts=tuple(sorted(f.hosts)),
            due_at=policy_for(tiers[client]).due_at(now),
            occurrences=f.occurrences,
            detail=f.detail,
            once=f.once,
        )
        for (client, key), f in sorted(found.items())
    ]
