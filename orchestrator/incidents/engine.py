"""One pass of the incident engine over the ledger (detect, then escalate and deliver pages), and the loop that
runs passes in a background thread of the collector.

The collector keeps no state of its own: how far detection has read (the last alert id and event seq) is in the
ledger and advances in the same transaction as the incidents it produced, by compare-and-set, so two collector
processes on one PostgreSQL never open or merge an incident twice (the one that loses the race writes nothing).
The clock is injected (tests move it; the collector passes the real one).
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import fleet
from ..errors import OrchestratorError
from ..ledger import Ledger
from ..ledger.incidents import DetectionResult, WatermarkMoved
from ..settings import Settings
from . import targets
from .detect import AlertIn, EventIn, SilentHost, detect
from .paging import PagingOptions, deliver_pass, escalate_pass

log = logging.getLogger(__name__)

Clock = Callable[[], _dt.datetime]
SETTLE = _dt.timedelta(seconds=2)
BATCH = 5000
EVENT_KINDS = ("rollout.state", "defence.push_state", "audit.recorded")


def real_clock() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


@dataclass(frozen=True)
class DetectOptions:
    inventories: Path | None = None
    actor: str = "collector"
    settle: _dt.timedelta = SETTLE
    batch: int = BATCH


def silent_hosts(ledger: Ledger, now: _dt.datetime, inventories: Path | None) -> list[SilentHost]:
    """Hosts that reported and fell silent (by the fleet view's rule); a host never seen is not an incident yet
    (it was never watched: onboarding shows it)."""
    try:
        rows = fleet.status(ledger, now=now, inventories=inventories)
    except OrchestratorError as exc:
        log.warning("incidents: cannot judge silent hosts: %s", exc)
        return []
    return [
        SilentHost(r.client, r.host, r.last_heartbeat)
        for r in rows
        if r.state == "silent" and r.last_heartbeat is not None
    ]


def detect_pass(ledger: Ledger, now: _dt.datetime, options: DetectOptions | None = None) -> DetectionResult | None:
    """Read what arrived since the watermarks, open or merge incidents and advance the watermarks together.
    None when another process advanced a watermark first (it handled these records)."""
    opts = options or DetectOptions()
    marks = ledger.incident_watermarks()
    alert_mark, event_mark = marks.get("alerts", 0), marks.get("events", 0)
    # Settling is judged on the real clock: it is about commits in flight, not about the injected time.
    alerts = ledger.alerts_after(alert_mark, settled_before=real_clock() - opts.settle, limit=opts.batch)
    events = ledger.events(since_seq=event_mark, limit=opts.batch)
    tiers = {c.name: c.tier for c in ledger.clients()}
    specs = detect(
        [AlertIn(a.client, a.host, a.rule, a.ip, a.severity) for _, a in alerts],
        [EventIn(e.kind, e.client, e.subject, e.payload) for e in events if e.kind in EVENT_KINDS],
        silent_hosts(ledger, now, opts.inventories),
        tiers,
        now,
    )
    moves = {
        "alerts": (alert_mark, alerts[-1][0] if alerts else alert_mark),
        "events": (event_mark, events[-1].seq if events else event_mark),
    }
    if not specs and all(old == new for old, new in moves.values()):
        return DetectionResult((), ())  # nothing new: no write (the engine ticks every few seconds)
    try:
        result = ledger.apply_detection(specs, moves, at=now, actor=opts.actor)
    except WatermarkMoved as exc:
        log.info("incidents: %s", exc)
        return None
    for i in result.opened:
        log.warning("incident %d opened for %s: %s", i.id, i.client, i.title)
    return result


@dataclass(frozen=True)
class TickResult:
    opened: int
    merged: int
    escalated: int
    sent: int
    failed: int


@dataclass(frozen=True)
class Engine:
    """Detect, escalate, deliver: one :meth:`tick` over the ledger at the clock's time."""

    ledger: Ledger
    paging: PagingOptions
    clock: Clock = real_clock
    detect_options: DetectOptions = DetectOptions()

    def tick(self) -> TickResult:
        now = self.clock()
        found = detect_pass(self.ledger, now, self.detect_options)
        steps = escalate_pass(self.ledger, now, self.paging.actor)
        sent, failed = deliver_pass(self.ledger, now, self.paging)
        return TickResult(
            opened=len(found.opened) if found else 0,
            merged=len(found.merged) if found else 0,
            escalated=len(steps),
            sent=sent,
            failed=failed,
        )


def engine_for(ledger: Ledger, settings: Settings, *, clock: Clock = real_clock, actor: str = "collector") -> Engine:
    """The engine as the collector runs it: targets from the inventories and the clients' vaults."""

    def resolve(client: str, target: str) -> list[str]:
        return targets.resolve(settings, settings.inventories, client, target)

    return Engine(
        ledger,
        PagingOptions(resolve=resolve, actor=actor),
        clock=clock,
        detect_options=DetectOptions(inventories=settings.inventories, actor=actor),
    )
