"""Executing a rollout: a state machine persisted in the ledger after every step.

Per wave: the window gate, the agent playbook on the wave's hosts (one run per client, in parallel), the
health gate (every host reports the new version and "ok" within the track's timeout), the smoke gate
(testinfra), and the failure budget counted across the whole rollout (any failure in the canary halts).
A failed gate halts the rollout and rolls back exactly the hosts it switched, then verifies them healthy on
their previous release. Hosts of later waves are never touched. A resumed rollout re-checks every host
instead of trusting the bookkeeping.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import __version__, paths, remote, secrets
from ..errors import OrchestratorError, RemoteError
from ..inventory import Host, Inventory
from ..ledger import HostResult, Ledger
from ..releases import Release, agent_extravars
from ..runner import RunRequest, new_run_id, run_playbook, tail_stdout
from ..settings import Settings
from .plan import PlannedWave, RolloutPlan
from .probe import Health, wait_healthy
from .smoke import run_smoke
from .tracks import client_track

log = logging.getLogger(__name__)

FINISHED_OK = "healthy"
FAILED = ("failed", "unreachable")
LOCK_STALE_SECONDS = 15 * 60


class RolloutHalted(OrchestratorError):
    """Raised when a gate failed: the touched hosts were rolled back (see the message for the outcome)."""


class RolloutPaused(OrchestratorError):
    """Raised when a rollout stopped without failing (window closed, interrupted): it can be resumed."""

    exit_code = 3


@dataclass(frozen=True)
class RolloutEvent:
    kind: str  # wave, gate, host, rollback, done
    message: str
    wave: str | None = None
    client: str | None = None
    host: str | None = None
    ok: bool = True


EventSink = Callable[[RolloutEvent], None]


@dataclass
class Tally:
    """The failure budget's count, across the whole rollout."""

    finished: int = 0
    failed: int = 0


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
    tally: Tally = field(default_factory=Tally)

    # ---- the main loop --------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> None:
        self.ledger.set_rollout_state(self.uid, "running", {"resumed": resume, "pid": os.getpid()})
        statuses = self._recheck() if resume else {}
        for wave in self.plan.waves:
            todo = [h for h in wave.hosts if statuses.get((h.client, h.host)) != FINISHED_OK]
            if not todo:
                self.on_event(RolloutEvent("wave", f"{wave.name}: every host already healthy", wave.name))
                continue
            self._check_not_aborted()
            todo = self._window_gate(wave, todo)
            self.on_event(RolloutEvent("wave", f"{wave.name}: {len(todo)} host(s)", wave.name))
            touched = self._apply(wave, todo)
            healthy, failed = self._gates(wave, touched)
            self.tally.finished += len(healthy) + len(failed)
            self.tally.failed += len(failed)
            if failed and (
                wave.index == 0 or self.plan.failure_budget.exceeded(self.tally.finished, self.tally.failed)
            ):
                gate = "canary" if wave.index == 0 else "failure budget"
                self._halt_and_roll_back(wave, gate, failed)
            if failed:
                self.on_event(RolloutEvent("gate", f"{len(failed)} failure(s) within the failure budget", wave.name))
            self.ledger.heartbeat_rollout_locks(self.uid)
            if wave is not self.plan.waves[-1] and self.plan.soak_seconds:
                self.on_event(
                    RolloutEvent("wave", f"soaking {self.plan.soak_seconds}s before the next wave", wave.name)
                )
                if self.stop.wait(self.plan.soak_seconds):
                    raise RolloutPaused(
                        f"rollout {self.uid} interrupted", hint=f"resume it: sentryctl rollout resume {self.uid}"
                    )
        self.ledger.set_rollout_state(
            self.uid, "completed", {"finished": self.tally.finished, "failed": self.tally.failed}
        )
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
    def _window_gate(self, wave: PlannedWave, hosts: Sequence[Any]) -> list[Any]:
        """A window that closed since planning stops the rollout before this wave (resumable, nothing fails)."""
        from datetime import UTC, datetime

        from .. import window as windows
        from ..tiers import get_tier

        if "window" not in self.plan.gates:
            return list(hosts)
        now = datetime.now(UTC)
        closed = []
        for client in sorted({h.client for h in hosts}):
            inv = self.inventories[client]
            if self.plan.emergency_reason or get_tier(inv.tier or "").around_the_clock:
                continue
            if not windows.parse(str(inv.meta.get("window") or "always")).is_open(now):
                closed.append(client)
        if closed:
            for h in hosts:
                if h.client in closed:
                    self.ledger.set_rollout_host(
                        self.uid, h.client, h.host, "deferred", detail={"reason": "window closed"}
                    )
            raise RolloutPaused(
                f"maintenance window closed for {', '.join(closed)} before wave {wave.name}",
                hint=f"resume when it opens: sentryctl rollout resume {self.uid}",
            )
        return list(hosts)

    def _apply(self, wave: PlannedWave, hosts: Sequence[Any]) -> list[Any]:
        """Run the agent playbook for this wave, one run per client at once; returns the hosts it may have switched."""
        by_client: dict[str, list[Any]] = {}
        for h in hosts:
            by_client.setdefault(h.client, []).append(h)
            self.ledger.set_rollout_host(self.uid, h.client, h.host, "updating")

        def one_client(client: str) -> list[Any]:
            inv = self.inventories[client]
            names = [h.host for h in by_client[client]]
            run_id = new_run_id(f"rollout-{wave.name}-{client}")
            self.ledger.start_run(
                "rollout", client, {"rollout": self.uid, "wave": wave.name, "hosts": names}, uid=run_id
            )
            track = client_track(inv.path, self.release.track)  # its task and run timeouts bound the wave
            request = RunRequest(
                playbook=paths.playbook("agent.yml"),
                inventory=inv,
                label=f"rollout-{wave.name}-{client}",
                limit=",".join(names),
                extravars={**agent_extravars(self.release), "sentry_stack_version": __version__},
                vault=secrets.run_files(self.settings, inv),
                run_id=run_id,
                task_timeout=track.task_timeout_seconds,
                run_timeout=track.run_timeout_seconds,
            )
            try:
                result = run_playbook(request, self.settings)
            except BaseException:
                self.ledger.finish_run(run_id, "cancelled")
                raise
            self.ledger.finish_run(
                run_id,
                "succeeded" if result.ok else "failed",
                {h: HostResult(o.status, None, o.to_json()) for h, o in result.hosts.items()},
            )
            touched = []
            for h in by_client[client]:
                outcome = result.hosts.get(h.host)
                status = outcome.status if outcome is not None else "unreachable"
                if status in ("ok", "changed"):
                    self.ledger.set_rollout_host(self.uid, client, h.host, "updated", detail={"run": run_id})
                else:
                    detail = {"run": run_id, "why": f"agent playbook {status}", "tail": tail_stdout(result, 15)[-1500:]}
                    self.ledger.set_rollout_host(
                        self.uid, client, h.host, "failed" if status == "failed" else "unreachable", detail=detail
                    )
                    self.on_event(RolloutEvent("host", f"agent playbook {status}", wave.name, client, h.host, ok=False))
                touched.append(h)  # even a failed run may have switched the host: the rollback checks
            return touched

        with ThreadPoolExecutor(max_workers=max(1, min(4, len(by_client)))) as pool:
            return [h for part in pool.map(one_client, sorted(by_client)) for h in part]

    def _gates(self, wave: PlannedWave, hosts: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        record = {(r.client, r.host): r for r in self._hosts()}
        statuses = {key: r.status for key, r in record.items()}
        candidates = [h for h in hosts if statuses.get((h.client, h.host)) == "updated"]
        failed = [h for h in hosts if statuses.get((h.client, h.host)) in FAILED]
        healthy: list[Any] = []
        for client in sorted({h.client for h in candidates}):
            inv = self.inventories[client]
            chosen = [inv.host(h.host) for h in candidates if h.client == client]
            verdicts = wait_healthy(inv, chosen, self.release.version, float(self.plan.health_timeout_seconds))
            passing = [h for h in chosen if verdicts[h.name].healthy]
            smoke = run_smoke(inv, passing, self.release.version, self.settings.home / "smoke") if passing else {}
            for host in chosen:
                verdict = verdicts[host.name]
                ok = verdict.healthy and smoke.get(host.name) is not None and smoke[host.name].passed
                entry = next(h for h in candidates if h.client == client and h.host == host.name)
                if ok:
                    healthy.append(entry)
                    self.ledger.set_rollout_host(self.uid, client, host.name, "healthy", detail=verdict.to_json())
                    self._record_release(client, host.name, record[(client, host.name)].detail.get("run"))
                    self.on_event(
                        RolloutEvent("host", f"healthy on {self.release.version}", wave.name, client, host.name)
                    )
                else:
                    why = verdict.detail if not verdict.healthy else "; ".join(smoke[host.name].failures)
                    gate = "health" if not verdict.healthy else "smoke"
                    status = "unreachable" if why.startswith("unreachable") else "failed"
                    self.ledger.set_rollout_host(self.uid, client, host.name, status, detail={"gate": gate, "why": why})
                    self.on_event(RolloutEvent("host", f"{gate} gate: {why}", wave.name, client, host.name, ok=False))
                    failed.append(entry)
        return healthy, failed

    def _record_release(self, client: str, host: str, run_uid: str | None) -> None:
        """``run_uid`` is the agent run that switched the host (kept in its rollout detail by ``_apply``)."""
        self.ledger.set_host_release(
            client,
            host,
            stack_version=__version__,
            release_version=self.release.version,
            release_track=self.release.track,
            run_uid=run_uid,
        )

    # ---- halt and roll back -----------------------------------------------------------------------
    def _halt_and_roll_back(self, wave: PlannedWave, gate: str, failed: Sequence[Any]) -> None:
        names = ", ".join(f"{h.client}/{h.host}" for h in failed)
        detail = {"gate": gate, "wave": wave.name, "failed": [f"{h.client}/{h.host}" for h in failed]}
        self.ledger.set_rollout_state(self.uid, "halted", detail)
        self.on_event(
            RolloutEvent("gate", f"{gate} gate failed ({names}): halting and rolling back", wave.name, ok=False)
        )
        self.ledger.set_rollout_state(self.uid, "rolling_back", detail)
        outcome = roll_back(self.settings, self.ledger, self.uid, self.inventories, self.release.version, self.on_event)
        final = "rolled_back" if outcome else "failed"
        self.ledger.set_rollout_state(self.uid, final, detail)
        message = f"rollout {self.uid} halted at wave {wave.name}: {gate} gate failed on {names}"
        if outcome:
            raise RolloutHalted(
                f"{message}; touched hosts rolled back and healthy", hint=f"see sentryctl rollout status {self.uid}"
            )
        raise RolloutHalted(
            f"{message}; ROLLBACK FAILED on some hosts", hint=f"see sentryctl rollout status {self.uid}"
        )

    # ---- resume --------------------------------------------------------------------------------
    def _hosts(self) -> list[Any]:
        record = self.ledger.rollout(self.uid)
        return list(record.hosts) if record is not None else []

    def _recheck(self) -> dict[tuple[str, str], str]:
        """Ask the hosts, not the bookkeeping: a host counts as done only if it is healthy on the target now."""
        result: dict[tuple[str, str], str] = {}
        runs = {(r.client, r.host): r.detail.get("run") for r in self._hosts()}
        for client in sorted({h.client for h in self.plan.hosts}):
            inv = self.inventories[client]
            planned = [inv.host(h.host) for h in self.plan.hosts if h.client == client]
            verdicts = wait_healthy(inv, planned, self.release.version, timeout=5.0)
            for host in planned:
                if verdicts[host.name].healthy:
                    result[(client, host.name)] = FINISHED_OK
                    self.ledger.set_rollout_host(self.uid, client, host.name, "healthy", detail={"rechecked": True})
                    self._record_release(client, host.name, runs.get((client, host.name)))
            done = sum(1 for (c, _), s in result.items() if c == client and s == FINISHED_OK)
            self.on_event(
                RolloutEvent(
                    "wave", f"re-checked {client}: {done}/{len(planned)} already healthy on {self.release.version}"
                )
            )
        return result


def current_target(inv: Inventory, host: Host) -> str | None:
    """Which release /opt/sentry/current points at on the host (None when it cannot be read)."""
    try:
        client = remote.connect(inv, host)
    except RemoteError:
        return None
    try:
        out = remote.run(client, "readlink /opt/sentry/current", timeout=10).stdout.strip()
    except RemoteError:
        return None
    finally:
        client.close()
    return out.rsplit("/", 1)[-1] or None


def roll_back(
    settings: Settings,
    ledger: Ledger,
    uid: str,
    inventories: Mapping[str, Inventory],
    bad_version: str,
    on_event: EventSink,
) -> bool:
    """Switch back exactly the hosts of rollout ``uid`` that run ``bad_version``; verify them healthy on their
    previous release. Returns True when every touched host ends healthy."""
    record = ledger.rollout(uid)
    assert record is not None
    touched = [h for h in record.hosts if h.status in ("updating", "updated", "healthy", "failed", "unreachable")]
    all_ok = True
    for client in sorted({h.client for h in touched}):
        inv = inventories[client]
        mine = [h for h in touched if h.client == client]
        switched = [h for h in mine if current_target(inv, inv.host(h.host)) == bad_version]
        for h in mine:
            if h not in switched:
                if h.status == "unreachable":
                    # The playbook never reached it, so nothing was switched; it stays on record as unreachable.
                    detail = {"switched": False, "why": "unreachable during the rollout; check it by hand"}
                    ledger.set_rollout_host(uid, client, h.host, "unreachable", detail=detail)
                    continue
                # Never switched: nothing to undo; make sure it is healthy on what it runs.
                verdict = wait_healthy(inv, [inv.host(h.host)], h.previous_version, timeout=20)[h.host]
                status = "rolled_back" if verdict.healthy else "rollback_failed"
                all_ok &= verdict.healthy
                ledger.set_rollout_host(
                    uid, client, h.host, status, detail={"switched": False, "health": verdict.to_json()}
                )
        if not switched:
            continue
        for h in switched:
            ledger.set_rollout_host(uid, client, h.host, "rolling_back")
        run_id = new_run_id(f"rollback-{client}")
        ledger.start_run("rollback", client, {"rollout": uid, "hosts": [h.host for h in switched]}, uid=run_id)
        request = RunRequest(
            playbook=paths.playbook("agent_rollback.yml"),
            inventory=inv,
            label=f"rollback-{client}",
            limit=",".join(h.host for h in switched),
            vault=secrets.run_files(settings, inv),
            run_id=run_id,
        )
        result = run_playbook(request, settings)
        ledger.finish_run(
            run_id,
            "succeeded" if result.ok else "failed",
            {h: HostResult(o.status, None, o.to_json()) for h, o in result.hosts.items()},
        )
        for h in switched:
            after: Health = wait_healthy(inv, [inv.host(h.host)], h.previous_version, timeout=30)[h.host]
            healthy = after.healthy and (
                result.hosts.get(h.host) is not None and result.hosts[h.host].status in ("ok", "changed")
            )
            all_ok &= healthy
            ledger.set_rollout_host(
                uid, client, h.host, "rolled_back" if healthy else "rollback_failed", detail=after.to_json()
            )
            if healthy and h.previous_version:
                ledger.set_host_release(
                    client, h.host, stack_version=__version__, release_version=h.previous_version,
                    release_track=record.track, run_uid=run_id,
                )  # fmt: skip
            on_event(RolloutEvent("rollback", after.detail, client=client, host=h.host, ok=healthy))
    return all_ok


def lock_is_stale(lock: Any) -> bool:
    """A holder on this machine whose process is gone, or any holder silent for longer than we tolerate."""
    if lock.holder_host == socket.gethostname():
        try:
            os.kill(int(lock.holder_pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    age = time.time() - float(lock.heartbeat_at.timestamp())
    return age > LOCK_STALE_SECONDS
