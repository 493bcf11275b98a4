"""The executor with an injected engine and gates: no host, no SSH; a real SQLite ledger and a real signed release.

A host the agent run could not reach, within the client's budget, does not make the rollout "completed": it ends
completed_with_failures, names the host and why, keeps it pending, and each wave's run is in the ledger."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from orchestrator import clients, releases
from orchestrator.inventory import Host
from orchestrator.ledger import Ledger
from orchestrator.releases import signing
from orchestrator.rollout import gates, service
from orchestrator.rollout.execute import Executor, RolloutIncomplete
from orchestrator.runner import Cancellation, EventCallback, HostOutcome, RunEvent, RunRequest, RunResult
from orchestrator.settings import Settings

AGENT = Path(__file__).resolve().parents[3] / "agent"
TRACKS = {
    "hotfix": {
        "soak_seconds": 0,
        "waves": [{"name": "canary", "hosts_per_client": 1}, {"name": "rest", "percent": 100}],
        "failure_budget": {"max_failed": 1, "max_failed_percent": None},
        "gates": ["window", "health", "budget"],
    }
}


class AllHealthy(gates.Gate):
    name = "health"
    stage = "judge"

    def judge(self, ctx: gates.WaveContext, hosts: Sequence[Host]) -> dict[str, gates.HostVerdict]:
        return {h.name: gates.HostVerdict(h.name, True, self.name, "healthy", {"healthy": True}) for h in hosts}


def engine(
    request: RunRequest, settings: Settings, on_event: EventCallback | None, cancel: Cancellation | None
) -> RunResult:
    names = (request.limit or "").split(",")
    hosts = {}
    for name in names:
        if name == "c":
            assert on_event is not None
            on_event(RunEvent("unreachable", host=name, task="Gathering Facts", message="ssh: connect timed out"))
            hosts[name] = HostOutcome(name, unreachable=1)
        else:
            hosts[name] = HostOutcome(name, ok=5, changed=2)
    return RunResult(request.run_id or "r", "failed" if "c" in names else "successful", 0, hosts, settings.home, True)


def test_a_missed_host_within_the_budget_ends_completed_with_failures(tmp_path: Path) -> None:
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")
    signing.keygen(settings.home)
    release = releases.build_release(AGENT, settings.home, version="1.0.1")
    spec = clients.build_spec(
        name="acme", tier="professional", hosts=["a=192.0.2.1", "b=192.0.2.2", "c=192.0.2.3"],
        mgmt_networks=["192.0.2.0/24"],
    )  # fmt: skip
    with Ledger.open(settings.db_url, settings.home) as ledger:
        inv = clients.create(settings, spec, ledger)
        (inv.path / "tracks.yml").write_text(yaml.safe_dump(TRACKS))
        planned = service.prepare(settings, ledger, "1.0.1", ["acme"])
        assert [[h.host for h in w.hosts] for w in planned.plan.waves] == [["a"], ["b", "c"]]
        ledger.create_rollout(
            "ro-1", release_version="1.0.1", track="hotfix", plan=planned.plan.to_json(), clients=["acme"],
            hosts=service._hosts_rows(planned, ["acme"]),
        )  # fmt: skip
        me = {"holder_host": socket.gethostname(), "holder_pid": os.getpid()}  # the executor renews as this process
        ledger.acquire_rollout_locks(["acme"], "ro-1", **me, is_stale=lambda _l: False)
        registry = {**gates.REGISTRY, "health": AllHealthy()}
        executor = Executor(
            settings, ledger, release, planned.plan, "ro-1", {"acme": inv}, engine=engine, registry=registry
        )
        with pytest.raises(RolloutIncomplete, match=r"completed with failures: acme/c \(agent playbook unreachable"):
            executor.run()
        record = ledger.rollout("ro-1")
        assert record is not None and record.state == "completed_with_failures"
        assert {h.host: h.status for h in record.hosts} == {"a": "healthy", "b": "healthy", "c": "pending"}
        assert "ssh: connect timed out" in str(record.host("acme", "c").detail["why"])  # type: ignore[union-attr]
        runs = ledger.runs(kind="rollout")
        assert len(runs) == 2 and {r.status for r in runs} == {"succeeded", "failed"}
        assert "Gathering Facts" in str(next(r for r in runs if r.status == "failed").host_results()["c"].detail["why"])
        assert {r.host: r.release_version for r in ledger.host_releases("acme")} == {"a": "1.0.1", "b": "1.0.1"}
