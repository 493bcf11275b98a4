"""The kill switch: every host of the scope back to its previous pack at once (no canary, no window), every live
push of those clients marked ``reverted`` (a push process still running notices at its next check and stops), then
a bounded wait until each host's heartbeat reports the pack it went back to.

Only assignments a push made are reverted (``push_uid`` set): a host the switch already put back names no push,
so pressing it twice does not swap the bad pack back in.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..ledger import Ledger
from ..ledger.defence_pushes import FINAL_PUSH_STATES, host_key
from ..rollout.events import EventSink, RolloutEvent
from .errors import DefenceError


@dataclass(frozen=True)
class RevertResult:
    clients: tuple[str, ...]
    pushes: tuple[str, ...]  # live pushes marked reverted
    hosts: dict[str, str | None] = field(default_factory=dict)  # "client/host" -> the version it went back to
    confirmed: tuple[str, ...] = ()
    silent: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "clients": list(self.clients),
            "pushes": list(self.pushes),
            "hosts": dict(self.hosts),
            "confirmed": list(self.confirmed),
            "silent": list(self.silent),
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def revert(
    ledger: Ledger,
    clients: Sequence[str] | None,
    *,
    reason: str = "kill switch (defence revert)",
    wait_seconds: float = 60.0,
    poll_seconds: float = 2.0,
    on_event: EventSink = lambda e: None,
    clock: Callable[[], dt.datetime] = _now,
    wait: Callable[[float], bool] | None = None,
) -> RevertResult:
    """Revert ``clients`` (None: every client). Returns which hosts went back, and which of
    them confirmed within ``wait_seconds`` (0: do not wait)."""
    # --all: every client, those with a push under way but nothing assigned yet (waiting for a window) included.
    known = sorted({a.client for a in ledger.assignments()} | {c.name for c in ledger.clients()})
    scope = sorted(known if clients is None else dict.fromkeys(clients))
    if clients is not None:
        for c in scope:
            if ledger.client(c) is None:
                raise DefenceError(f"client {c!r} is not in the ledger", hint="see 'sentryctl client list'")
    # Pushes first: a push that looked at its state before this cannot assign a wave after the revert unnoticed
    # (it checks before every wave, and reverts what it assigned late; see executor._check_live).
    stopped = []
    for push in ledger.pushes(limit=1000):
        if push.state not in FINAL_PUSH_STATES and set(push.clients) & set(scope):
            ledger.set_push_state(push.uid, "reverted", {"by": "defence revert", "clients": scope}, halt_reason=reason)
            stopped.append(push.uid)
            on_event(RolloutEvent("wave", f"push {push.uid} marked reverted"))
    back: dict[str, str | None] = {}
    for client in scope:
        names = [a.host for a in ledger.assignments(client) if a.push_uid is not None]
        if names:
            for a in ledger.revert_packs(client, names, reason=reason):
                back[host_key(a.client, a.host)] = a.version
                on_event(
                    RolloutEvent("host", f"back to {a.version or 'the release rules'}", client=a.client, host=a.host)
                )
    result = RevertResult(tuple(scope), tuple(stopped), back)
    if not back or wait_seconds <= 0:
        return RevertResult(tuple(scope), tuple(stopped), back, (), tuple(sorted(back)) if wait_seconds > 0 else ())
    return _confirm(ledger, result, wait_seconds, poll_seconds, clock, wait or threading.Event().wait)


def _confirm(
    ledger: Ledger,
    result: RevertResult,
    wait_seconds: float,
    poll_seconds: float,
    clock: Callable[[], dt.datetime],
    wait: Callable[[float], bool],
) -> RevertResult:
    """Wait, bounded, until each reverted host's newest heartbeat reports the digest it went back to."""
    want = {(a.client, a.host): a.digest for a in ledger.assignments() if host_key(a.client, a.host) in result.hosts}
    deadline = clock() + dt.timedelta(seconds=wait_seconds)
    since = clock()
    confirmed: set[str] = set()
    while True:
        for client in sorted({c for c, _ in want}):
            hosts = sorted(h for c, h in want if c == client)
            for host, beats in ledger.push_beats(client, hosts, since).items():
                fresh = [b for b in beats if b.received_at >= since]
                if fresh and fresh[-1].pack_digest == want[(client, host)]:
                    confirmed.add(host_key(client, host))
        if len(confirmed) == len(want) or clock() >= deadline or wait(poll_seconds):
            break
    silent = tuple(sorted(set(result.hosts) - confirmed))
    return RevertResult(result.clients, result.pushes, result.hosts, tuple(sorted(confirmed)), silent)
