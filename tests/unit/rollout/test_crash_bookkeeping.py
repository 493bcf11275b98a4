"""Crash bookkeeping with an injected engine and host reader: no host, no SSH; a real SQLite ledger and a real
signed release. A start refused by the lock leaves nothing to resume; a resume re-plans against the ledger and
never downgrades; the failure budget goes on from the ledger's count; locks are renewed during a wave and a
controller whose locks were taken over stops with one line."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import clients, releases
from orchestrator.errors import OrchestratorError
from orchestrator.inventory import Host, Inventory
from orchestrator.ledger import Ledger, RolloutLocked
from orchestrator.releases import Release, signing
from orchestrator.rollout import gates, service
from orchestrator.rollout.errors import RolloutHalted, RolloutLockLost
from orchestrator.rollout.execute import Executor
from orchestrator.rollout.probe import Health
from orchestrator.rollout.recheck import HostState
from orchestrator.runner import Cancellation, EventCallback, HostOutcome, RunRequest, RunResult
from orchestrator.settings import Settings

from .test_execute_engine import AllHealthy

AGENT = Path(__file__).resolve().parents[3] / "agent"
ME = (socket.gethostname(), os.getpid())


def tracks(waves: list[dict[str, Any]], max_failed: int) -> dict[str, Any]:
    return {
        "hotfix": {
            "soak_seconds": 0,
            "waves": waves,
            "failure_budget": {"max_failed": max_failed, "max_failed_percent": None},
            "gates": ["window", "health", "budget"],
        }
    }


REGISTRY = {**gates.REGISTRY, "health": AllHealthy()}


@dataclass
class Engine:
    """Runs nothing: records which hosts each agent run was for; ``failing`` hosts come back unreachable."""

    failing: frozenset[str] = frozenset()
    during: Any = None  # called inside every run, as if the wave were long
    limits: list[list[str]] = field(default_factory=list)

    def __call__(
        self, request: RunRequest, settings: Settings, on_event: EventCallback | None, cancel: Cancellation | None
    ) -> RunResult:
        names = (request.limit or "").split(",")
        self.limits.append(names)
        if self.during is not None:
            self.during()
        hosts = {n: HostOutcome(n, unreachable=1) if n in self.failing else HostOutcome(n, ok=5, changed=2)
                 for n in names}  # fmt: skip
        ok = not (self.failing & set(names))
        return RunResult(request.run_id or "r", "successful" if ok else "failed", 0, hosts, settings.home, True)


def reader(done: set[str], running: str = "1.0.0") -> Any:
    """What the hosts run, as a resume reads it: ``done`` hosts healthy on the target, the others on ``running``."""

    def read(inv: Inventory, hosts: Sequence[Host], version: str) -> dict[str, HostState]:
        return {
            h.name: HostState(h.name, version, Health(h.name, True, version, "ok", "healthy"))
            if h.name in done
            else HostState(h.name, running, Health(h.name, False, running, "ok", f"runs {running}"))
            for h in hosts
        }

    return read


@dataclass
class World:
    settings: Settings
    ledger: Ledger
    release: Release
    inv: Inventory


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    hosts, waves, max_failed = request.param
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")
    signing.keygen(settings.home)
    release = releases.build_release(AGENT, settings.home, version="1.0.5")
    spec = clients.build_spec(
        name="acme", tier="professional", hosts=[f"{h}=192.0.2.{i + 1}" for i, h in enumerate(hosts)],
        mgmt_networks=["192.0.2.0/24"],
    )  # fmt: skip
    with Ledger.open(settings.db_url, settings.home) as ledger:
        inv = clients.create(settings, spec, ledger)
        (inv.path / "tracks.yml").write_text(yaml.safe_dump(tracks(waves, max_failed)))
        yield World(settings, ledger, release, inv)


def record(w: World, uid: str) -> service.PlannedRollout:
    planned = service.prepare(w.settings, w.ledger, "1.0.5", ["acme"])
    w.ledger.create_rollout(
        uid, release_version="1.0.5", track="hotfix", plan=planned.plan.to_json(), clients=["acme"],
        hosts=service._hosts_rows(planned, ["acme"]),
    )  # fmt: skip
    return planned


def on(w: World, host: str, version: str) -> None:
    w.ledger.set_host_release("acme", host, stack_version="0", release_version=version, release_track="hotfix",
                              run_uid=None)  # fmt: skip


TWO_WAVES = [{"name": "canary", "hosts_per_client": 1}, {"name": "rest", "percent": 100}]


@pytest.mark.parametrize("world", [(["a", "b"], TWO_WAVES, 1)], indirect=True)
def test_a_start_refused_by_the_lock_leaves_nothing_to_resume(world: World) -> None:
    w = world
    record(w, "ro-held")
    w.ledger.acquire_rollout_locks(["acme"], "ro-held", holder_host=ME[0], holder_pid=ME[1], is_stale=lambda _: False)
    planned = service.prepare(w.settings, w.ledger, "1.0.5", ["acme"])
    created: list[str] = []
    with pytest.raises(RolloutLocked, match="ro-held"):
        service.execute(w.settings, w.ledger, planned, on_event=lambda _e: None, on_created=created.append)
    refused = w.ledger.rollout(created[0])
    assert refused is not None and refused.state == "aborted", refused
    assert "ro-held" in str(refused.detail["refused"])
    assert {h.status for h in refused.hosts} == {"pending"}  # nothing touched
    with pytest.raises(OrchestratorError, match="is aborted"):
        service.resume(w.settings, w.ledger, created[0], on_event=lambda _e: None)


@pytest.mark.parametrize("world", [(["a", "b", "c"], TWO_WAVES, 1)], indirect=True)
def test_resume_replans_against_the_ledger_and_never_downgrades(world: World) -> None:
    w = world
    record(w, "ro-old")  # planned for all three, then left (as a refused start once left it)
    on(w, "a", "1.0.6")  # a newer release reached a and b since
    on(w, "b", "1.0.6")
    stored = w.ledger.rollout("ro-old")
    assert stored is not None
    p = service.replan(w.ledger, stored, w.release, {"acme": w.inv})
    assert [h.host for h in p.hosts] == ["c"]
    after = w.ledger.rollout("ro-old")
    assert after is not None
    assert {h.host: h.status for h in after.hosts} == {"a": "skipped", "b": "skipped", "c": "pending"}
    assert "downgrade refused" in str(after.host("acme", "a").detail["why"])  # type: ignore[union-attr]
    engine = Engine()
    w.ledger.acquire_rollout_locks(["acme"], "ro-old", holder_host=ME[0], holder_pid=ME[1], is_stale=lambda _: False)
    Executor(w.settings, w.ledger, w.release, p, "ro-old", {"acme": w.inv}, engine=engine, registry=REGISTRY,
             read_hosts=reader(set())).run(resume=True)  # fmt: skip
    assert engine.limits == [["c"]]  # no agent run ever reached a or b
    assert {r.host: r.release_version for r in w.ledger.host_releases("acme")} == {"a": "1.0.6", "b": "1.0.6",
                                                                                   "c": "1.0.5"}  # fmt: skip
    final = w.ledger.rollout("ro-old")
    assert final is not None and final.state == "completed"


FIVE = (["a", "b", "c", "d", "e"], [{"name": "canary", "hosts_per_client": 1}, {"name": "rest", "percent": 100}], 1)


@pytest.mark.parametrize("world", [FIVE], indirect=True)
def test_the_failure_budget_resumes_from_the_ledgers_count(world: World) -> None:
    """A controller died after a passed canary (a) and an unreachable b, within a budget of one; on resume, one more
    failure (d) is the second and halts: counting from zero, it would have passed."""
    w = world
    record(w, "ro-1")
    w.ledger.set_rollout_state("ro-1", "running")
    w.ledger.set_rollout_host("ro-1", "acme", "a", "healthy")
    on(w, "a", "1.0.5")
    w.ledger.set_rollout_host("ro-1", "acme", "b", "unreachable", detail={"why": "agent playbook unreachable"})
    w.ledger.set_rollout_host("ro-1", "acme", "c", "updating")  # the wave the controller died in
    stored = w.ledger.rollout("ro-1")
    assert stored is not None
    p = service.replan(w.ledger, stored, w.release, {"acme": w.inv})
    rolled_back: list[str] = []

    def roll_back(settings: Settings, ledger: Ledger, uid: str, *_a: Any, **_k: Any) -> bool:
        rolled_back.append(uid)
        return True

    w.ledger.acquire_rollout_locks(["acme"], "ro-1", holder_host=ME[0], holder_pid=ME[1], is_stale=lambda _: True)
    engine = Engine(failing=frozenset({"d"}))
    executor = Executor(w.settings, w.ledger, w.release, p, "ro-1", {"acme": w.inv}, engine=engine,
                        registry=REGISTRY, read_hosts=reader({"a"}), roll_back=roll_back)  # fmt: skip
    with pytest.raises(RolloutHalted, match=r"budget"):
        executor.run(resume=True)
    assert rolled_back == ["ro-1"]
    assert sorted(n for names in engine.limits for n in names) == ["c", "d", "e"]  # b stays failed, not re-run
    final = w.ledger.rollout("ro-1")
    assert final is not None and final.state == "rolled_back"


@pytest.mark.parametrize("world", [(["a", "b"], TWO_WAVES, 1)], indirect=True)
def test_locks_are_renewed_during_a_wave(world: World) -> None:
    w = world
    planned = record(w, "ro-long")
    w.ledger.acquire_rollout_locks(["acme"], "ro-long", holder_host=ME[0], holder_pid=ME[1], is_stale=lambda _: False)
    renewed: list[bool] = []

    def long_wave() -> None:
        """The wave lasts until the lock's heartbeat moved (bounded): only a renewal during the wave moves it."""
        start = w.ledger.rollout_locks()[0].heartbeat_at
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and w.ledger.rollout_locks()[0].heartbeat_at == start:
            time.sleep(0.02)
        renewed.append(w.ledger.rollout_locks()[0].heartbeat_at > start)

    engine = Engine(during=long_wave)
    Executor(w.settings, w.ledger, w.release, planned.plan, "ro-long", {"acme": w.inv}, engine=engine,
             registry=REGISTRY, lock_interval=0.05).run()  # fmt: skip
    assert renewed == [True, True]


@pytest.mark.parametrize("world", [(["a", "b"], TWO_WAVES, 1)], indirect=True)
def test_a_controller_whose_locks_were_taken_over_stops_with_one_line(world: World) -> None:
    w = world
    planned = record(w, "ro-x")
    w.ledger.acquire_rollout_locks(["acme"], "ro-x", holder_host=ME[0], holder_pid=ME[1], is_stale=lambda _: False)
    taken = threading.Event()

    def taken_over() -> None:
        if not taken.is_set():  # another controller judged this one dead and recovered the lock mid-wave
            w.ledger.acquire_rollout_locks(["acme"], "ro-x", holder_host="ctl2", holder_pid=7, is_stale=lambda _: True)
            taken.set()

    engine = Engine(during=taken_over)
    executor = Executor(w.settings, w.ledger, w.release, planned.plan, "ro-x", {"acme": w.inv}, engine=engine,
                        registry=REGISTRY, lock_interval=0.05)  # fmt: skip
    with pytest.raises(RolloutLockLost) as info:
        executor.run()
    assert "\n" not in str(info.value) and "lost its locks" in str(info.value)
    assert engine.limits == [["a"]]  # it stopped before the next wave
    assert [(lk.holder_host, lk.holder_pid) for lk in w.ledger.rollout_locks()] == [("ctl2", 7)]
