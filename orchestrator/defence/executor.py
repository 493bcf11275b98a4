"""Executing a push: per wave, assign the pack, wait (bounded) until every host's heartbeat reports the new digest,
and after the canary dwell with the gates watched; a failed gate halts the push and reverts every host it assigned.

The loop reads the ledger every ``poll_seconds`` (the collector stores the agents' heartbeats there; a "pack"
heartbeat arrives at once after a swap) and judges the records with the pure gates of :mod:`.gates`. Every step is
persisted in the push's per-host state, so that ``defence push --resume`` goes on from where a dead process
stopped without assigning again a host that confirmed. Between polls the push's own state is read: the kill switch
(``defence revert``) marks it ``reverted`` and this loop stops at its next check. No clock is read but ``clock``
and no wait is made but ``wait``: tests and the bench inject both.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..fleet import DEFAULT_INTERVAL_SECONDS
from ..ledger import Ledger
from ..ledger.defence_pushes import host_key
from ..ledger.locks import HEARTBEAT_SECONDS
from ..rollout.events import EventSink, RolloutEvent
from ..rollout.plan import ClientInput, HostInput, PlannedWave
from . import gates
from .errors import DefenceError
from .gates import GateFailure, HostWatch
from .policy import CANARY, TierPolicy

log = logging.getLogger(__name__)

ASSIGNED = ("assigned", "confirmed")


class PushHalted(DefenceError):
    """Raised when a gate failed: every host the push assigned was reverted to its previous pack."""


class PushPaused(DefenceError):
    """Raised when a push stopped without failing (a client waits for its window, or interrupted): resumable."""

    exit_code = 3


class PushStopped(DefenceError):
    """Raised when the push was reverted (kill switch) or taken over while this process ran it."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class PushExecutor:
    ledger: Ledger
    uid: str
    version: str
    digest: str
    waves: tuple[PlannedWave, ...]
    inputs: Mapping[str, ClientInput]  # every client of the push: its window, tier and hosts
    policies: Mapping[str, TierPolicy]
    intervals: Mapping[tuple[str, str], float]  # expected heartbeat interval per (client, host)
    dwell_seconds: int
    gap_intervals: float
    emergency: bool
    on_event: EventSink = field(default=lambda e: None)
    poll_seconds: float = 2.0
    clock: Callable[[], dt.datetime] = _now
    stop: threading.Event = field(default_factory=threading.Event)
    wait: Callable[[float], bool] | None = None  # returns True to stop; default: stop.wait
    holder: tuple[str, int] = field(default_factory=lambda: (socket.gethostname(), os.getpid()))
    held: dict[str, str] = field(default_factory=dict)
    _beat_at: dt.datetime | None = None

    # ---- the main loop --------------------------------------------------------------------------
    def run(self) -> None:
        self.ledger.set_push_state(self.uid, "running", {"pid": self.holder[1], "host": self.holder[0]})
        for wave in self.waves:
            self._check_live()
            hosts = self._hosts()
            todo = [h for h in wave.hosts if hosts[host_key(h.client, h.host)].get("state") != "confirmed"]
            todo = self._window(wave, todo)
            if todo:
                self.on_event(RolloutEvent("wave", f"{wave.name}: {len(todo)} host(s)", wave.name))
                self._assign(wave, todo)
                self._confirm(wave, todo)
            if wave.name == CANARY and self.dwell_seconds and (todo or not self._detail().get("dwell_done")):
                self._dwell(restart=bool(todo))
        self._finish()

    def _finish(self) -> None:
        hosts = self._hosts()
        if self.held:
            self.ledger.set_push_state(self.uid, "waiting_window", {"waiting": dict(sorted(self.held.items()))})
            raise PushPaused(
                f"push {self.uid} is waiting for window: " + "; ".join(f"{c} ({w})" for c, w in self.held.items()),
                hint=f"when it opens: sentryctl defence push --resume {self.uid}",
            )
        missing = sorted(k for k, h in hosts.items() if h.get("state") not in ("confirmed", "skipped"))
        self.ledger.set_push_state(self.uid, "completed", {"unconfirmed": missing})
        self.on_event(RolloutEvent("done", f"push {self.uid} completed: {self.version} on every host"))

    # ---- steps ----------------------------------------------------------------------------------
    def _window(self, wave: PlannedWave, todo: list[HostInput]) -> list[HostInput]:
        """A client whose window closed since planning is held (not for an emergency, nor a 24/7 tier)."""
        now = self.clock()
        for client in sorted({h.client for h in todo} - set(self.held)):
            c = self.inputs[client]
            if self.emergency or c.around_the_clock or c.window.is_open(now):
                continue
            why = f"outside maintenance window {c.window.text!r} (opens {c.window.next_open(now).isoformat()})"
            self.held[client] = why
            self.on_event(RolloutEvent("gate", f"window gate: {why}", wave.name, client, ok=False))
        return [h for h in todo if h.client not in self.held]

    def _assign(self, wave: PlannedWave, todo: list[HostInput]) -> None:
        """Assign the pack to the hosts not assigned yet (a resumed push does not assign a host again)."""
        current = {(a.client, a.host): a for a in self.ledger.assignments()}
        now = self.clock().isoformat()
        for client in sorted({h.client for h in todo}):
            names = [h.host for h in todo if h.client == client]
            fresh = [n for n in names if getattr(current.get((client, n)), "digest", None) != self.digest]
            if fresh:
                self.ledger.assign_pack(client, fresh, self.version, self.digest, push_uid=self.uid)
            self.ledger.set_push_hosts(
                self.uid,
                {
                    host_key(client, n): {"state": "assigned", "assigned_at": now}
                    for n in names
                    if self._hosts()[host_key(client, n)].get("state") != "assigned"
                },
            )

    def _confirm(self, wave: PlannedWave, todo: list[HostInput]) -> None:
        """Wait, bounded by the slowest client's confirm timeout, until every host reports the new digest."""
        timeout = max(self.policies[h.client].confirm_timeout_seconds for h in todo)
        deadline = self.clock() + dt.timedelta(seconds=timeout)
        keys = {host_key(h.client, h.host) for h in todo}
        while True:
            watches = self._watch()
            self._judge(watches, wave.name)
            done = {host_key(w.client, w.host) for w in watches if gates.confirmed(w, self.digest)}
            self._record_confirmed(watches, done)
            waiting = sorted(keys - done)
            if not waiting:
                self.on_event(RolloutEvent("wave", f"{wave.name}: every host reports {self.version}", wave.name))
                return
            if self.clock() >= deadline:
                self._halt(f"{', '.join(waiting)} did not report pack {self.version} within {timeout}s")
            self._pause()

    def _dwell(self, *, restart: bool) -> None:
        """Watch the gates on every host assigned so far for the dwell, from when it started (kept across resume)."""
        started_text = self._detail().get("dwell_started_at")
        if restart or not isinstance(started_text, str):
            started = self.clock()
            self.ledger.set_push_state(
                self.uid, "running", {"dwell_started_at": started.isoformat(), "dwell_done": False}
            )
        else:
            started = dt.datetime.fromisoformat(started_text)
        end = started + dt.timedelta(seconds=self.dwell_seconds)
        self.on_event(RolloutEvent("wave", f"canary dwell: {self.dwell_seconds}s with the gates watched", CANARY))
        while True:
            self._judge(self._watch(), CANARY)
            if self.clock() >= end:
                break
            self._pause()
        self.ledger.set_push_state(self.uid, "running", {"dwell_done": True})
        self.on_event(RolloutEvent("gate", "canary gates passed", CANARY))

    # ---- reading and judging --------------------------------------------------------------------
    def _watch(self) -> list[HostWatch]:
        """The gates' view of every host this push assigned (canaries stay watched during later waves)."""
        out = []
        by_client: dict[str, dict[str, dt.datetime]] = {}
        for key, h in self._hosts().items():
            at = h.get("assigned_at")
            if h.get("state") in ASSIGNED and isinstance(at, str):
                client, host = key.split("/", 1)
                by_client.setdefault(client, {})[host] = dt.datetime.fromisoformat(at)
        for client, assigned in sorted(by_client.items()):
            beats = self.ledger.push_beats(client, sorted(assigned), min(assigned.values()))
            for host, at in sorted(assigned.items()):
                mine = tuple(beats[host])
                probe = HostWatch(client, host, at, mine, self._interval(client, host))
                swapped = gates.first_on_pack(probe, self.digest)
                since = self.ledger.ban_counts(client, [host], swapped)[host] if swapped else 0
                base = self.ledger.ban_counts(client, [host], at - gates.BASELINE, at)[host]
                out.append(HostWatch(client, host, at, mine, probe.expected_interval, since, base, swapped))
        return out

    def _interval(self, client: str, host: str) -> float:
        return self.intervals.get((client, host), DEFAULT_INTERVAL_SECONDS)

    def _judge(self, watches: list[HostWatch], wave: str) -> None:
        failures = gates.judge_all(
            watches, self.digest, dict(self.policies), gap_intervals=self.gap_intervals, now=self.clock()
        )
        if failures:
            for f in failures:
                self.on_event(RolloutEvent("gate", f"{f.gate} gate: {f.why}", wave, f.client, f.host, ok=False))
            self._halt("; ".join(f.line() for f in failures), failures)

    def _record_confirmed(self, watches: list[HostWatch], done: set[str]) -> None:
        hosts = self._hosts()
        updates = {}
        for w in watches:
            key = host_key(w.client, w.host)
            if key in done and hosts[key].get("state") != "confirmed":
                at = gates.first_on_pack(w, self.digest)
                updates[key] = {"state": "confirmed", "confirmed_at": (at or self.clock()).isoformat()}
                self.on_event(RolloutEvent("host", f"reports pack {self.version}", client=w.client, host=w.host))
        if updates:
            self.ledger.set_push_hosts(self.uid, updates)

    # ---- halting ----------------------------------------------------------------------------------
    def _halt(self, reason: str, failures: list[GateFailure] | None = None) -> None:
        """Revert every host this push assigned (its per-host state, and the ledger's assignments naming it, in
        case a process died between assigning and recording), end the push ``halted``, raise."""
        self._check_live()
        assigned: dict[str, set[str]] = {}
        for key, h in self._hosts().items():
            if h.get("state") in ASSIGNED:
                client, host = key.split("/", 1)
                assigned.setdefault(client, set()).add(host)
        for a in self.ledger.assignments():
            if a.push_uid == self.uid:
                assigned.setdefault(a.client, set()).add(a.host)
        why = f"push {self.uid} halted: {reason}"
        reverted: list[str] = []
        for client, names in sorted(assigned.items()):
            for a in self.ledger.revert_packs(client, sorted(names), reason=why):
                reverted.append(host_key(a.client, a.host))
        self.ledger.set_push_hosts(
            self.uid, {host_key(c, n): {"state": "reverted"} for c, names in assigned.items() for n in names}
        )
        self.ledger.set_push_state(
            self.uid,
            "halted",
            {"reverted": sorted(reverted), "failures": [f.__dict__ for f in failures or []]},
            halt_reason=reason,
        )
        self.on_event(
            RolloutEvent("done", f"halted; reverted {len(reverted)} host(s) to their previous pack", ok=False)
        )
        raise PushHalted(
            f"push {self.uid} halted: {reason}; {len(reverted)} host(s) reverted to their previous pack",
            hint=f"see 'sentryctl defence status {self.uid}'",
        )

    # ---- plumbing ---------------------------------------------------------------------------------
    def _check_live(self) -> None:
        record = self.ledger.push(self.uid)
        if record is not None and record.state in ("reverted", "aborted"):
            # The kill switch reverted every host that named this push; one this process assigned between its
            # last check and the switch still names it, and goes back too.
            late: dict[str, list[str]] = {}
            for a in self.ledger.assignments():
                if a.push_uid == self.uid:
                    late.setdefault(a.client, []).append(a.host)
            for client, names in sorted(late.items()):
                self.ledger.revert_packs(client, names, reason=f"push {self.uid} was {record.state} while it ran")
            raise PushStopped(
                f"push {self.uid} was {record.state} while it ran (kill switch); this process stops",
                hint=f"see 'sentryctl defence status {self.uid}'",
            )
        now = self.clock()
        if self._beat_at is None or (now - self._beat_at).total_seconds() >= HEARTBEAT_SECONDS:
            self.ledger.heartbeat_push_locks(self.uid, holder_host=self.holder[0], holder_pid=self.holder[1])
            self._beat_at = now

    def _pause(self) -> None:
        stopped = self.wait(self.poll_seconds) if self.wait is not None else self.stop.wait(self.poll_seconds)
        if stopped or self.stop.is_set():
            raise PushPaused(
                f"push {self.uid} interrupted", hint=f"resume it: sentryctl defence push --resume {self.uid}"
            )
        self._check_live()

    def _hosts(self) -> Mapping[str, Mapping[str, object]]:
        record = self.ledger.push(self.uid)
        assert record is not None
        return record.hosts

    def _detail(self) -> Mapping[str, object]:
        record = self.ledger.push(self.uid)
        assert record is not None
        return record.detail
