"""Provisioning's collector wiring: the URL and pin come from `collector init`'s state, the token is ensured and
stays out of the extra variables (it travels in the client's vault)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import clients, vault
from orchestrator.collector import config
from orchestrator.collector.agentvars import collector_extravars
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings

SPEC = {
    "name": "acme",
    "tier": "professional",
    "hosts": ["game1=203.0.113.10"],
    "mgmt_networks": ["198.51.100.0/24"],
    "game_ports": ["7777"],
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    settings.home.mkdir(parents=True, exist_ok=True)
    with Ledger.open(None, settings.home) as opened:
        yield opened


def test_no_collector_no_wiring(settings: Settings, ledger: Ledger) -> None:
    inv = clients.create(settings, clients.build_spec(**SPEC), ledger)  # type: ignore[arg-type]
    assert collector_extravars(settings, inv, ledger) == {}


def test_wiring_names_the_collector_and_its_pin_never_the_token(settings: Settings, ledger: Ledger) -> None:
    inv = clients.create(settings, clients.build_spec(**SPEC), ledger)  # type: ignore[arg-type]
    directory = config.init(settings, listen="10.213.103.1:8443", url=None, sans=[])
    wiring = collector_extravars(settings, inv, ledger)
    assert wiring == {
        "sentry_agent_collector_url": "https://10.213.103.1:8443",
        "sentry_agent_collector_cert_sha256": config.cert_sha256(directory / config.CERT_FILE),
    }
    token = vault.get_secret(settings, inv, "collector_token")
    assert token and token not in repr(wiring)


def test_wiring_passes_the_raw_release_signing_key_for_packs(settings: Settings, ledger: Ledger) -> None:
    from cryptography.hazmat.primitives import serialization

    from orchestrator.releases import signing

    inv = clients.create(settings, clients.build_spec(**SPEC), ledger)  # type: ignore[arg-type]
    config.init(settings, listen="10.213.103.1:8443", url=None, sans=[])
    assert "sentry_agent_pack_public_key" not in collector_extravars(settings, inv, ledger)
    signing.keygen(settings.home)
    raw = signing.load_public_key(signing.public_key_path(settings.home)).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = collector_extravars(settings, inv, ledger)["sentry_agent_pack_public_key"]
    assert key == raw.hex() and len(key) == 64
