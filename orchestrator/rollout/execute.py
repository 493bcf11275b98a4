"""Executing a rollout: a state machine persisted in the ledger after every step.

Per wave and client, the client's own gates (``gates.py``, from its track): ``before`` gates (window, training)
may hold the client back, the agent playbook runs on the wave's hosts (one run per client, in parallel), the
judging gates (health, smoke) decide per host, and the budget gate decides whether to halt: a failed canary
always halts, otherwise a client may lose its budget's share of its own hosts. A halt rolls back exactly the
hosts the rollout switched, then verifies them healthy on their previous release; later waves are never touched.

A rollout never calls a missed host a success: hosts left without the release end the rollout
``completed_with_failures`` (kept pending, exit 1), clients held by their window end it ``waiting_window``
(exit 3); ``rollout resume`` re-checks every host instead of trusting the bookkeeping and carries on.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import __version__, paths, vault
from ..inventory import Inventory
from ..ledger import Ledger
from ..ledger.locks import HEARTBEAT_SECONDS
from ..ledger.records import RolloutHostRecord
from ..releases import Release, agent_extravars
from ..runner import RunRequest, RunResult
from ..runs import Engine, default_engine, record_releases, run_recorded
from ..settings import Settings
from ..tiers import get_tier
from . import gates as gate_registry
from . import rollback
from .errors import RolloutHalted, RolloutIncomplete, RolloutLockLost, RolloutPaused
from .events import EventSink, RolloutEvent
from .gates import ClientTally, Gate, HostVerdict, WaveContext
from .lockkeeper import LockKeeper
from .plan import HostInput, PlannedWave, RolloutPlan
from .recheck import HostReader, read_hosts
from .tracks import client_track

log = logging.getLogger(__name__)

FINISHED_OK = "healthy"
FAILED = ("failed", "unreachable")
HOST_DONE = ("healthy", "skipped")


Key = tuple[str, str]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Executor:
    settings: Settings
    ledger: Ledger
    release: Release
    plan: RolloutPlan
    uid: str
    inventories: Mapping[str, Inventory]
    on_event: EventSink = field(default=lambda e: None)
    stop: threading.Event = field(default_factory=threading.Event)
    engine: Engine = default_engine
    registry: Mapping[str, Gate] = field(default_factory=lambda: gate_registry.REGISTRY)
    clock: Callable[[], dt.datetime] = _now
    held: dict[str, str] = field(default_factory=dict)  # client -> why its waves wait (window, training)
    holder: tuple[str, int] = field(default_factory=lambda: (socket.gethostname(), os.getpid()))  # as locked
    lock_interval: float = HEARTBEAT_SECONDS
    read_hosts: HostReader = read_hosts  # what hosts run, asked on resume
    roll_back: Callable[..., bool] = rollback.roll_back

    # ---- the main loop --------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> None:
        """Run every wave; the locks are renewed all along (a wave may outlast LOCK_STALE_SECONDS)."""
        keeper = LockKeeper(self.ledger, self.uid, *self.holder, interval=self.lock_interval, on_lost=self.stop)
        keeper.beat()
        with keeper:
            try:
                self._run(keeper, resume=resume)
            except RolloutPaused:
                if keeper.lost is not None:
                    keeper.beat()  # raises RolloutLockLost: it was taken over, not interrupted
                raise

    def _run(self, keeper: LockKeeper, *, resume: bool) -> None:
        self.ledger.set_rollout_state(self.uid, "running", {"resumed": resume, "pid": os.getpid()})
        statuses = self._recheck() if resume else {}
        # Every host's verdict so far: on resume, the ledger's (the budget goes on from its count, not from zero).
        outcomes = self._recorded_outcomes(statuses) if resume else {}
        for w in self.plan.waiting:
            if w.reason == "window" and not any(h.client == w.client for h in self.plan.hosts):
                self.held[w.client] = f"waiting for window: {w.detail} (opens {w.until})"
        sizes = {c: len({(h.client, h.host) for h in self.plan.hosts if h.client == c}
                        | {k for k in outcomes if k[0] == c}) for c in self.plan.clients}  # fmt: skip
        canary_failed: set[str] = set()
        for wave in self.plan.waves:
            todo = [h for h in wave.hosts if (h.client, h.host) not in outcomes and h.client not in self.held]
            if not todo:
                continue
            self._check_not_aborted()
            keeper.beat()
            todo = self._before_gates(wave, todo)
            if not todo:
                continue
            self.on_event(RolloutEvent("wave", f"{wave.name}: {len(todo)} host(s)", wave.name))
            # A client's canary is its first wave before any of its hosts proved healthy (on resume too).
            canaries = {h.client for h in todo if not any(ok for (c, _), ok in outcomes.items() if c == h.client)}
            touched = self._apply(wave, todo)
            verdicts = self._judge(wave, touched)
            halts = []
            for client in sorted({h.client for h in todo}):
                failed_here = [h for h in todo if h.client == client and not verdicts[(client, h.host)].ok]
                outcomes.update({(client, h.host): verdicts[(client, h.host)].ok for h in todo if h.client == client})
                if failed_here and client in canaries:
                    canary_failed.add(client)
                mine = [ok for (c, _), ok in outcomes.items() if c == client]
                tally = ClientTally(sizes[client], len(mine), mine.count(False), client in canary_failed)
                for gate in gate_registry.of_client(self.plan.gates_of(client).gates, "after", self.registry):
                    why = gate.halt(self._context(client), tally)
                    if why is not None:
                        halts.append((client, why, failed_here))
                        break
                if failed_here and not any(c == client for c, _, _ in halts):
                    self.on_event(
                        RolloutEvent("gate", f"{len(failed_here)} failure(s) within the budget", wave.name, client)
                    )
            if halts:
                self._halt_and_roll_back(wave, halts)
            keeper.beat()
            if wave is not self.plan.waves[-1] and self.plan.soak_seconds:
                self.on_event(
                    RolloutEvent("wave", f"soaking {self.plan.soak_seconds}s before the next wave", wave.name)
                )
                if self.stop.wait(self.plan.soak_seconds):
                    raise RolloutPaused(
                        f"rollout {self.uid} interrupted", hint=f"resume it: sentryctl rollout resume {self.uid}"
                    )
        self._finish()

    def _recorded_outcomes(self, statuses: Mapping[Key, str]) -> dict[Key, bool]:
        """The verdicts the ledger holds for this rollout's hosts: healthy (or found healthy now) counts as done,
        failed or unreachable as a failure against the budget; those hosts are not run again in this pass (a
        finished rollout keeps them pending, and the next resume retries them)."""
        clients = set(self.plan.clients)
        found: dict[Key, bool] = {}
        for r in self._hosts():
            key = (r.client, r.host)
            if r.client not in clients:
                continue
            if statuses.get(key) == FINISHED_OK or r.status == FINISHED_OK:
                found[key] = True
            elif r.status in FAILED:
                found[key] = False
        return found

    def _finish(self) -> None:
        """Name what the rollout did not do: hosts without the release (kept pending) and clients still held."""
        planned = {(h.client, h.host) for h in self.plan.hosts}  # stored waves and caught-up clients alike
        missed = [
            h
            for h in self._hosts()
            if (h.client, h.host) in planned
            and h.client not in self.held
            and h.status in (*FAILED, "deferred", "pending")
        ]
        lines = []
        for h in missed:
            why = str(h.detail.get("why") or h.status)
            lines.append(f"{h.client}/{h.host} ({why})")
            self.ledger.set_rollout_host(self.uid, h.client, h.host, "pending", detail={"why": why, "was": h.status})
        held = dict(sorted(self.held.items()))
        for client, why in held.items():
            for h in self._hosts():
                if h.client == client and h.status in ("pending", "deferred"):
                    self.ledger.set_rollout_host(self.uid, client, h.host, "deferred", detail={"why": why})
        detail = {"pending": [f"{h.client}/{h.host}" for h in missed], "waiting": held}
        if missed:
            self.ledger.set_rollout_state(self.uid, "completed_with_failures", detail)
            also = f"; waiting for their window: {', '.join(held)}" if held else ""
            raise RolloutIncomplete(
                f"rollout {self.uid} completed with failures: {'; '.join(lines)} did not get "
                f"{self.release.version} and stay pending{also}",
                hint=f"once they answer: sentryctl rollout resume {self.uid}",
            )
        if held:
            self.ledger.set_rollout_state(self.uid, "waiting_window", detail)
            raise RolloutPaused(
                f"rollout {self.uid} is waiting for window: " + "; ".join(f"{c} ({why})" for c, why in held.items()),
                hint=f"when it opens: sentryctl rollout resume {self.uid} (or 'rollout continue' from a timer)",
            )
        self.ledger.set_rollout_state(self.uid, "completed", detail)
        self.on_event(RolloutEvent("done", f"rollout {self.uid} completed"))

    def _check_not_aborted(self) -> None:
        record = self.ledger.rollout(self.uid)
        if record is not None and record.state == "aborted":
            raise RolloutPaused(f"rollout {self.uid} was aborted", hint="start a new rollout when ready")
        if self.stop.is_set():
            raise RolloutPaused(
                f"rollout {self.uid} interrupted", hint=f"resume it: sentryctl rollout resume {self.uid}"
            )

    # ---- gates ---------------------------------------------------------------------------------
    def _context(self, client: str, deadline: float | None = None) -> WaveContext:
        inv = self.inventories[client]
        signed = True
        if "training" in self.plan.gates_of(client).gates:
            record = self.ledger.training_status(client, self.release.version, self.release.requires_training)
            signed = record is not None and record.state == "signed_off"
        return WaveContext(
            client=client,
            inventory=inv,
            release_version=self.release.version,
            gates=self.plan.gates_of(client),
            around_the_clock=get_tier(inv.tier or "").around_the_clock,
            emergency=self.plan.emergency_reason is not None,
            now=self.clock(),
            home=self.settings.home,
            training_signed_off=signed,
            deadline=deadline,
        )

    def _before_gates(self, wave: PlannedWave, hosts: Sequence[HostInput]) -> list[HostInput]:
        """A client whose window closed (or training lapsed) since planning is held; the others go on."""
        for client in sorted({h.client for h in hosts}):
            for gate in gate_registry.of_client(self.plan.gates_of(client).gates, "before", self.registry):
                why = gate.hold(self._context(client))
                if why is not None:
                    self.held[client] = why
                    self.on_event(RolloutEvent("gate", f"{gate.name} gate: {why}", wave.name, client, ok=False))
                    break
        return [h for h in hosts if h.client not in self.held]

    def _apply(self, wave: PlannedWave, hosts: Sequence[HostInput]) -> list[HostInput]:
        """Run the agent playbook for this wave, one run per client at once; returns the hosts it may have switched."""
        by_client: dict[str, list[HostInput]] = {}
        for h in hosts:
            by_client.setdefault(h.client, []).append(h)
            self.ledger.set_rollout_host(self.uid, h.client, h.host, "updating")

        def one_client(client: str) -> list[HostInput]:
            inv = self.inventories[client]
            names = [h.host for h in by_client[client]]
            track = client_track(inv.path, self.release.track)  # its task and run timeouts bound the wave
            request = RunRequest(
                playbook=paths.playbook("agent.yml"),
                inventory=inv,
                label=f"rollout-{wave.name}-{client}",
                limit=",".join(names),
                # The health gate waits, bounded by the track's timeout; the role's own wait would come first.
                extravars={
                    **agent_extravars(self.release),
                    "sentry_stack_version": __version__,
                    "sentry_agent_health_enabled": False,
                },
                vault=vault.run_files(self.settings, inv),
                task_timeout=track.task_timeout_seconds,
                run_timeout=track.run_timeout_seconds,
            )
            summary = {"rollout": self.uid, "wave": wave.name, "hosts": names}
            result, reasons = run_recorded(
                self.settings, self.ledger, request, kind="rollout", client=client, summary=summary, engine=self.engine
            )
            for h in by_client[client]:
                self._record_apply(wave, client, h.host, result, reasons)
            return list(by_client[client])  # even a failed run may have switched a host: the rollback checks

        with ThreadPoolExecutor(max_workers=max(1, min(4, len(by_client)))) as pool:
            return [h for part in pool.map(one_client, sorted(by_client)) for h in part]

    def _record_apply(
        self, wave: PlannedWave, client: str, host: str, result: RunResult, reasons: Mapping[str, str]
    ) -> None:
        outcome = result.hosts.get(host)
        status = outcome.status if outcome is not None else "unreachable"
        if status in ("ok", "changed") and outcome is not None and outcome.rescued:
            # A task failed and a rescue block caught it: the play went on, but the host did not do what it should.
            status = "failed"
            why = f"agent playbook: {outcome.rescued} task(s) failed and were rescued"
        elif status in ("ok", "changed"):
            self.ledger.set_rollout_host(self.uid, client, host, "updated", detail={"run": result.run_id})
            return
        else:
            why = f"agent playbook {reasons.get(host) or status}"
        detail = {"run": result.run_id, "why": why}
        self.ledger.set_rollout_host(self.uid, client, host, "failed" if status == "failed" else "unreachable",
                                     detail=detail)  # fmt: skip
        self.on_event(RolloutEvent("host", why, wave.name, client, host, ok=False))

    def _judge(self, wave: PlannedWave, hosts: Sequence[HostInput]) -> dict[Key, HostVerdict]:
        record = {(r.client, r.host): r for r in self._hosts()}
        verdicts: dict[Key, HostVerdict] = {}
        deadline = time.monotonic()
        for h in hosts:
            row = record[(h.client, h.host)]
            if row.status != "updated":
                verdicts[(h.client, h.host)] = HostVerdict(h.host, False, "apply", str(row.detail.get("why", "")))
        for client in sorted({h.client for h in hosts}):
            inv = self.inventories[client]
            chosen = [inv.host(h.host) for h in hosts if h.client == client and (h.client, h.host) not in verdicts]
            if not chosen:
                continue
            ctx = self._context(client, deadline + self.plan.gates_of(client).health_timeout_seconds)
            found = gate_registry.judge_hosts(ctx, chosen, self.registry)
            for host in chosen:
                verdict = found[host.name]
                verdicts[(client, host.name)] = verdict
                if verdict.ok:
                    self.ledger.set_rollout_host(self.uid, client, host.name, "healthy", detail=dict(verdict.detail))
                    run_uid = record[(client, host.name)].detail.get("run")
                    record_releases(self.ledger, client, [host.name], self.release, run_uid)
                    self.on_event(
                        RolloutEvent("host", f"healthy on {self.release.version}", wave.name, client, host.name)
                    )
                else:
                    status = "unreachable" if verdict.why.startswith("unreachable") else "failed"
                    why = f"{verdict.gate} gate: {verdict.why}"
                    self.ledger.set_rollout_host(
                        self.uid, client, host.name, status, detail={"gate": verdict.gate, "why": why}
                    )
                    self.on_event(RolloutEvent("host", why, wave.name, client, host.name, ok=False))
        return verdicts

    # ---- halt and roll back -----------------------------------------------------------------------
    def _halt_and_roll_back(self, wave: PlannedWave, halts: Sequence[tuple[str, str, Sequence[HostInput]]]) -> None:
        failed = [h for _, _, hs in halts for h in hs]
        names = ", ".join(f"{h.client}/{h.host}" for h in failed)
        gate = "; ".join(f"{why} gate" if why == "canary" else why for _, why, _ in halts)
        detail = {"gate": gate, "wave": wave.name, "failed": [f"{h.client}/{h.host}" for h in failed]}
        self.ledger.set_rollout_state(self.uid, "halted", detail)
        self.on_event(RolloutEvent("gate", f"{gate} failed ({names}): halting and rolling back", wave.name, ok=False))
        self.ledger.set_rollout_state(self.uid, "rolling_back", detail)
        timeout = float(max(self.plan.gates_of(c).health_timeout_seconds for c, _, _ in halts))
        outcome = self.roll_back(
            self.settings, self.ledger, self.uid, self.inventories, self.release.version, self.on_event,
            engine=self.engine, health_timeout=timeout,
        )  # fmt: skip
        final = "rolled_back" if outcome else "failed"
        self.ledger.set_rollout_state(self.uid, final, detail)
        message = f"rollout {self.uid} halted at wave {wave.name}: {gate} failed on {names}"
        if outcome:
            raise RolloutHalted(
                f"{message}; touched hosts rolled back and healthy", hint=f"see sentryctl rollout status {self.uid}"
            )
        raise RolloutHalted(
            f"{message}; ROLLBACK FAILED on some hosts", hint=f"see sentryctl rollout status {self.uid}"
        )

    # ---- resume --------------------------------------------------------------------------------
    def _hosts(self) -> list[RolloutHostRecord]:
        record = self.ledger.rollout(self.uid)
        return list(record.hosts) if record is not None else []

    def _recheck(self) -> dict[Key, str]:
        """Ask the hosts, not the bookkeeping: a host counts as done only if it is healthy on the target now, with
        its release link on it. A host whose link is on the target while its agent answers for another version
        (a controller killed between the switch and the restart) is named, and its wave finishes the switch."""
        result: dict[Key, str] = {}
        runs = {(r.client, r.host): r.detail.get("run") for r in self._hosts()}
        version = self.release.version
        for client in sorted({h.client for h in self.plan.hosts}):
            inv = self.inventories[client]
            planned = [inv.host(h.host) for h in self.plan.hosts if h.client == client]
            states = self.read_hosts(inv, planned, version)
            for host in planned:
                state = states[host.name]
                if state.done(version):
                    result[(client, host.name)] = FINISHED_OK
                    self.ledger.set_rollout_host(self.uid, client, host.name, "healthy", detail={"rechecked": True})
                    record_releases(self.ledger, client, [host.name], self.release, runs.get((client, host.name)))
                elif state.half_switched(version):
                    why = (
                        f"release link on {version} but the agent answers: {state.health.detail}; finishing its switch"
                    )
                    self.ledger.set_rollout_host(self.uid, client, host.name, "pending", detail={"why": why})
                    self.on_event(RolloutEvent("host", why, client=client, host=host.name, ok=False))
            done = sum(1 for (c, _), s in result.items() if c == client and s == FINISHED_OK)
            self.on_event(
                RolloutEvent("wave", f"re-checked {client}: {done}/{len(planned)} already healthy on {version}")
            )
        return result


__all__ = [
    "EventSink",
    "Executor",
    "RolloutEvent",
    "RolloutHalted",
    "RolloutIncomplete",
    "RolloutLockLost",
    "RolloutPaused",
]
