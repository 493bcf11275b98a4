"""The plan the user confirms is the plan that runs: `rollout start` plans once, and if the ledger moved between
the plan and its execution (another rollout switched a host), it refuses before any SSH and records nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import clients, releases
from orchestrator.errors import OrchestratorError
from orchestrator.ledger import Ledger
from orchestrator.releases import signing
from orchestrator.rollout import service
from orchestrator.settings import Settings

AGENT = Path(__file__).resolve().parents[3] / "agent"


def test_a_plan_the_ledger_moved_under_is_refused_and_nothing_is_recorded(tmp_path: Path) -> None:
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")
    signing.keygen(settings.home)
    releases.build_release(AGENT, settings.home, version="1.0.1")
    spec = clients.build_spec(name="acme", tier="enterprise", hosts=["a=192.0.2.1", "b=192.0.2.2"],
                              mgmt_networks=["192.0.2.0/24"])  # fmt: skip
    with Ledger.open(settings.db_url, settings.home) as ledger:
        clients.create(settings, spec, ledger)
        planned = service.prepare(settings, ledger, "1.0.1", ["acme"])
        assert {h.host for h in planned.plan.hosts} == {"a", "b"}
        # Meanwhile another rollout brought host b the release: the confirmed plan no longer holds.
        ledger.set_host_release("acme", "b", stack_version="0.1.0", release_version="1.0.1", release_track="hotfix",
                                run_uid=None)  # fmt: skip
        with pytest.raises(OrchestratorError, match="changed since it was made"):
            service.execute(settings, ledger, planned, on_event=lambda _e: None)
        assert ledger.rollouts() == []
