"""Rollout gates as data: one protocol, a registry, and each client's own list (from its effective track).

A gate acts at one of three points of a client's wave:
- ``before`` the wave touches the client (``hold``): a reason to hold the client back (window, training);
- on the hosts the agent playbook switched (``judge``): a verdict per host (health, smoke); a host must pass
  every judging gate of its client, in registry order, and one that fails a gate is not asked by the next;
- ``after`` the wave (``halt``): a reason to halt the whole rollout (budget: a failed canary, or more failed
  hosts of a client than its budget allows).

The executor asks each client only the gates its track lists, so a client's tracks.yml that drops or adds a
gate is honoured for that client alone.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from .. import window as windows
from ..inventory import Host, Inventory
from .plan import ClientGates
from .probe import wait_healthy
from .smoke import run_smoke

Stage = Literal["before", "judge", "after"]


@dataclass(frozen=True)
class WaveContext:
    """What a gate may know about one client's wave."""

    client: str
    inventory: Inventory
    release_version: str
    gates: ClientGates
    around_the_clock: bool
    emergency: bool
    now: dt.datetime
    home: Path  # the state home: the smoke checks share its SSH masters with the wave's run
    training_signed_off: bool = True  # only asked by the training gate
    deadline: float | None = None  # time.monotonic() by which every judging gate must have decided


@dataclass(frozen=True)
class HostVerdict:
    host: str
    ok: bool
    gate: str
    why: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ClientTally:
    """One client's count for the failure budget: its hosts in the rollout, how many finished, how many failed."""

    hosts: int
    finished: int = 0
    failed: int = 0
    canary_failed: bool = False


class Gate:
    """The gate protocol. A gate overrides the method of its stage; the others keep these neutral answers."""

    name: ClassVar[str]
    stage: ClassVar[Stage]

    def hold(self, ctx: WaveContext) -> str | None:
        return None

    def judge(self, ctx: WaveContext, hosts: Sequence[Host]) -> dict[str, HostVerdict]:
        return {h.name: HostVerdict(h.name, True, self.name, "") for h in hosts}

    def halt(self, ctx: WaveContext, tally: ClientTally) -> str | None:
        return None


class WindowGate(Gate):
    name = "window"
    stage = "before"

    def hold(self, ctx: WaveContext) -> str | None:
        if ctx.emergency or ctx.around_the_clock:
            return None
        win = windows.parse(str(ctx.inventory.meta.get("window") or "always"))
        if win.is_open(ctx.now):
            return None
        return f"waiting for window {win.text!r} (opens {win.next_open(ctx.now).isoformat()})"


class TrainingGate(Gate):
    name = "training"
    stage = "before"

    def hold(self, ctx: WaveContext) -> str | None:
        return None if ctx.training_signed_off else f"training for {ctx.release_version} is not signed off"


def _remaining(ctx: WaveContext) -> float:
    if ctx.deadline is None:
        return float(ctx.gates.health_timeout_seconds)
    return max(1.0, ctx.deadline - time.monotonic())


class HealthGate(Gate):
    """Every host reports the release's version and state "ok" on /healthz before the client's deadline (the
    track's health_timeout_seconds from the moment the wave's agent run ended); no answer is never healthy."""

    name = "health"
    stage = "judge"

    def judge(self, ctx: WaveContext, hosts: Sequence[Host]) -> dict[str, HostVerdict]:
        verdicts = wait_healthy(ctx.inventory, hosts, ctx.release_version, _remaining(ctx), home=ctx.home)
        return {name: HostVerdict(name, v.healthy, self.name, v.detail, v.to_json()) for name, v in verdicts.items()}


class SmokeGate(Gate):
    name = "smoke"
    stage = "judge"

    def judge(self, ctx: WaveContext, hosts: Sequence[Host]) -> dict[str, HostVerdict]:
        results = run_smoke(ctx.inventory, hosts, ctx.release_version, ctx.home)
        return {
            name: HostVerdict(name, r.passed, self.name, "; ".join(r.failures) or "smoke checks passed")
            for name, r in results.items()
        }


class BudgetGate(Gate):
    """A failed canary host halts at once; otherwise a client may lose at most its budget's share of its hosts."""

    name = "budget"
    stage = "after"

    def halt(self, ctx: WaveContext, tally: ClientTally) -> str | None:
        if tally.canary_failed:
            return "canary"
        allowed = ctx.gates.failure_budget.allowed(tally.hosts)
        if tally.failed > allowed:
            return f"failure budget ({tally.failed} of {ctx.client}'s {tally.hosts} host(s) failed, {allowed} allowed)"
        return None


REGISTRY: Mapping[str, Gate] = {
    g.name: g for g in (WindowGate(), TrainingGate(), HealthGate(), SmokeGate(), BudgetGate())
}


def of_client(names: Sequence[str], stage: Stage, registry: Mapping[str, Gate] = REGISTRY) -> list[Gate]:
    """The client's gates of one stage, in registry order (health before smoke), whatever order the track lists."""
    wanted = set(names)
    return [g for name, g in registry.items() if name in wanted and g.stage == stage]


def judge_hosts(
    ctx: WaveContext, hosts: Sequence[Host], registry: Mapping[str, Gate] = REGISTRY
) -> dict[str, HostVerdict]:
    """Each host's verdict from the client's judging gates: the first failure, or the last gate's pass."""
    verdicts: dict[str, HostVerdict] = {h.name: HostVerdict(h.name, True, "none", "no judging gate") for h in hosts}
    passing = list(hosts)
    for gate in of_client(ctx.gates.gates, "judge", registry):
        if not passing:
            break
        found = gate.judge(ctx, passing)
        for host in passing:
            verdicts[host.name] = found.get(host.name) or HostVerdict(host.name, False, gate.name, "no verdict")
        passing = [h for h in passing if verdicts[h.name].ok]
    return verdicts


Clock = Callable[[], dt.datetime]
