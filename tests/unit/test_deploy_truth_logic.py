"""Pure parts of the deploy half: per-client budgets, the gate chain, the audit's stray manifests, the report's
host order and a failed check-mode converge that keeps its reason."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from orchestrator.audit import bundle, report
from orchestrator.audit.drift import _changes
from orchestrator.audit.records import AuditOutcome, HostReport
from orchestrator.inventory import Host
from orchestrator.releases import signing
from orchestrator.rollout import gates
from orchestrator.rollout.plan import ClientGates
from orchestrator.rollout.tracks import FailureBudget
from orchestrator.runner import HostOutcome, RunResult

from .audit.test_report_and_bundle import WHEN, expected


def test_a_budget_is_a_share_of_the_clients_own_hosts() -> None:
    shipped = FailureBudget(max_failed=1, max_failed_percent=10, min_finished=10)
    # A two-host client loses no host without halting; a 20-host one may lose one (the count caps the share).
    assert [shipped.allowed(n) for n in (1, 2, 9, 10, 20, 100)] == [0, 0, 0, 1, 1, 1]
    assert FailureBudget(max_failed=1, max_failed_percent=None).allowed(2) == 1
    assert FailureBudget(max_failed=None, max_failed_percent=25).allowed(8) == 2


class Verdicts(gates.Gate):
    stage: ClassVar[gates.Stage] = "judge"

    def __init__(self, name: str, failing: set[str]) -> None:
        self.name = name  # type: ignore[misc]
        self.failing = failing
        self.asked: list[str] = []

    def judge(self, ctx: gates.WaveContext, hosts: Sequence[Host]) -> dict[str, gates.HostVerdict]:
        self.asked += [h.name for h in hosts]
        return {h.name: gates.HostVerdict(h.name, h.name not in self.failing, self.name, "x") for h in hosts}


def context(names: Sequence[str]) -> gates.WaveContext:
    budget = FailureBudget(max_failed=1, max_failed_percent=None)
    return gates.WaveContext(
        client="acme", inventory=None, release_version="1.0.1",  # type: ignore[arg-type]
        gates=ClientGates(tuple(names), 30, budget), around_the_clock=False, emergency=False,
        now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC), home=Path("/nonexistent"),
    )  # fmt: skip


def test_each_client_runs_only_its_own_judging_gates_in_registry_order() -> None:
    health, smoke = Verdicts("health", {"a"}), Verdicts("smoke", {"b"})
    registry = {"health": health, "smoke": smoke}
    hosts = [Host(name=n, address="192.0.2.1") for n in ("a", "b", "c")]  # type: ignore[call-arg]
    found = gates.judge_hosts(context(["smoke", "health"]), hosts, registry)
    assert {n: (v.ok, v.gate) for n, v in found.items()} == {
        "a": (False, "health"),
        "b": (False, "smoke"),
        "c": (True, "smoke"),
    }
    assert smoke.asked == ["b", "c"]  # a host that failed health is not asked by smoke
    only_smoke = Verdicts("smoke", set())
    gates.judge_hosts(context(["smoke"]), hosts, {"health": Verdicts("health", {"a"}), "smoke": only_smoke})
    assert only_smoke.asked == ["a", "b", "c"]  # a track without the health gate never runs it


def test_budget_gate_halts_on_a_canary_or_past_the_share() -> None:
    gate = gates.BudgetGate()
    ctx = context(["budget"])
    assert gate.halt(ctx, gates.ClientTally(hosts=3, finished=3, failed=1)) is None
    assert "failure budget" in str(gate.halt(ctx, gates.ClientTally(hosts=3, finished=3, failed=2)))
    assert gate.halt(ctx, gates.ClientTally(hosts=3, finished=1, failed=1, canary_failed=True)) == "canary"


def test_only_the_top_level_manifest_is_special(tmp_path: Path) -> None:
    home = tmp_path / "home"
    signing.keygen(home)
    root = tmp_path / "bundle"
    (root / "inventory").mkdir(parents=True)
    (root / "inventory" / "MANIFEST.json").write_text("{}\n")
    bundle.seal(root, home, {"audit": "au-1"})
    assert "inventory/MANIFEST.json" in json.loads((root / "MANIFEST.json").read_text())["files"]
    (root / "inventory" / "MANIFEST.json").write_text('{"forged": true}\n')
    (root / "inventory" / "MANIFEST.sig").write_text("x")
    problems = bundle.verify(root, signing.public_key_path(home)).problems()
    assert any("altered: inventory/MANIFEST.json" in p for p in problems)
    assert any("added: inventory/MANIFEST.sig" in p for p in problems)


def test_html_lists_hosts_with_findings_first(tmp_path: Path) -> None:
    hosts = {
        "a1": HostReport("a1", "192.0.2.1", expected("a1")),
        "z9": HostReport("z9", "192.0.2.9", expected("z9"), error="unreachable"),
    }
    html = report.report_html(
        AuditOutcome("au-1", "acme", "professional", "Ada", WHEN, WHEN, hosts, tmp_path, "", True)
    )
    assert html.index('href="#host-z9"') < html.index('href="#host-a1"')


def test_a_failed_check_run_keeps_the_failing_task_and_the_changes_before_it(tmp_path: Path) -> None:
    events = tmp_path / "job_events"
    events.mkdir()
    rows = [
        {
            "event": "runner_on_ok",
            "event_data": {"host": "g1", "task": "Write the sshd drop-in", "res": {"changed": True}},
        },
        {
            "event": "runner_on_failed",
            "event_data": {"host": "g1", "task": "Check sshd", "res": {"msg": "sshd -T failed"}},
        },
    ]
    for i, row in enumerate(rows, 1):
        (events / f"{i}-x.json").write_text(json.dumps(row))
    run = RunResult("r1", "failed", 2, {"g1": HostOutcome("g1", ok=3, changed=1, failed=1)}, tmp_path, True)
    found = _changes(run, ["g1"])["g1"]
    assert found.failure is not None and "'Check sshd' failed: sshd -T failed" in found.failure
    assert [c.task for c in found.changes] == ["Write the sshd drop-in"]
