"""Provision chooses each host's release before any SSH: a catalog release that fails verification stops it, and
`--release V` obeys the rollout's rules (no downgrade, the release's minimum previous version). The hosts here are
TEST-NET addresses nothing answers on: reaching preflight would be a different, slower failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import clients, provision, releases
from orchestrator.errors import OrchestratorError
from orchestrator.ledger import Ledger
from orchestrator.releases import signing
from orchestrator.settings import Settings

AGENT = Path(__file__).resolve().parents[2] / "agent"


@pytest.fixture
def acme(tmp_path: Path) -> Settings:
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")
    signing.keygen(settings.home)
    spec = clients.build_spec(name="acme", tier="professional", hosts=["a=192.0.2.1", "b=192.0.2.2"],
                              mgmt_networks=["192.0.2.0/24"])  # fmt: skip
    with Ledger.open(settings.db_url, settings.home) as ledger:
        clients.create(settings, spec, ledger)
    return settings


def runs_on(settings: Settings, version: str) -> None:
    releases.build_release(AGENT, settings.home, version=version)
    with Ledger.open(settings.db_url, settings.home) as ledger:
        for host in ("a", "b"):
            ledger.set_host_release("acme", host, stack_version="0.1.0", release_version=version,
                                    release_track="hotfix", run_uid=None)  # fmt: skip


def test_a_tampered_catalog_release_stops_provision_before_any_ssh(acme: Settings) -> None:
    runs_on(acme, "1.0.1")
    bundle = releases.get_release(acme.home, "1.0.1").bundle
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    with Ledger.open(acme.db_url, acme.home) as ledger, pytest.raises(OrchestratorError, match=r"1\.0\.1"):
        provision.provision(acme, "acme", ledger)
    with Ledger.open(acme.db_url, acme.home) as ledger:
        assert ledger.runs() == []


def test_release_flag_refuses_a_downgrade_and_a_release_below_its_minimum(acme: Settings) -> None:
    runs_on(acme, "1.0.3")
    releases.build_release(AGENT, acme.home, version="1.0.2")
    releases.build_release(AGENT, acme.home, version="2.0.0", min_previous_version="1.5.0")
    for version, why in (("1.0.2", "downgrade"), ("2.0.0", r"1\.5\.0")):
        with Ledger.open(acme.db_url, acme.home) as ledger, pytest.raises(OrchestratorError, match=why) as info:
            provision.provision(acme, "acme", ledger, release=version)
        assert "nothing was changed" in info.value.message
    with Ledger.open(acme.db_url, acme.home) as ledger:
        assert ledger.runs() == []
