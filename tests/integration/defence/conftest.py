"""The defence lane on the session's lab: the provisioned client's agents wired to a real collector over TLS by
provisioning (with the release key's public half, so they poll for packs), the collector serving packs, and
``sentryctl defence`` driven as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import inventory
from orchestrator.lab.state import HostState
from orchestrator.ledger import Ledger
from orchestrator.ledger.telemetry import HeartbeatRecord
from orchestrator.releases import signing

from ..conftest import Provisioned
from ..telemetry.conftest import SENTRYCTL, Telemetry, running_telemetry, wait_for

# Agents poll the collector for their pack every few seconds here instead of the tiers' 5/10/30 s, so the module
# stays short; bench/defence.py measures with the tiers' own intervals.
POLL_SECONDS = 3


@dataclass
class Defence:
    tel: Telemetry
    workdir: Path

    @property
    def provisioned(self) -> Provisioned:
        return self.tel.provisioned

    @property
    def client(self) -> str:
        return self.provisioned.client

    def hosts(self) -> list[HostState]:
        return sorted(self.provisioned.env.hosts(), key=lambda h: h.name)

    def env(self) -> dict[str, str]:
        settings = self.tel.settings
        return {**os.environ, "SENTRY_HOME": str(settings.home), "SENTRY_INVENTORIES": str(settings.inventories)}

    def sentryctl(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SENTRYCTL, *args], check=False, env=self.env(), capture_output=True, text=True, timeout=timeout
        )

    def ledger(self) -> Ledger:
        return Ledger.open(self.tel.settings.db_url, self.tel.settings.home)

    def write(self, name: str, data: Any) -> Path:
        path = self.workdir / name
        path.write_text(json.dumps(data, indent=2))
        return path

    def build(self, version: str, rules: dict[str, Any] | None, blocklist: list[dict[str, Any]] | None) -> str:
        """Build a pack through the CLI; its digest."""
        args = ["defence", "build", "--version", version, "--json"]
        if rules is not None:
            args += ["--rules", str(self.write(f"rules-{version}.json", rules))]
        if blocklist is not None:
            args += ["--blocklist", str(self.write(f"blocklist-{version}.json", blocklist))]
        proc = self.sentryctl(*args)
        assert proc.returncode == 0, proc.stderr
        with self.ledger() as ledger:
            pack = ledger.pack(version)
        assert pack is not None
        return str(pack.digest)

    def heartbeats(self) -> dict[str, HeartbeatRecord]:
        with self.ledger() as ledger:
            return {hb.host: hb for hb in ledger.latest_heartbeats(self.client)}

    def wait_digest(self, hosts: list[str], digest: str | None, timeout: float) -> None:
        def reached() -> bool:
            beats = self.heartbeats()
            return all(h in beats and beats[h].pack_digest == digest for h in hosts)

        wait_for(f"{', '.join(hosts)} to report pack {digest}", reached, timeout, 0.5)

    def nft_set(self, host: HostState) -> str:
        return self.provisioned.env.ssh(host, "nft list set inet sentry banned_v4")


@pytest.fixture(scope="module")
def defence(provisioned: Provisioned, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Defence]:
    settings = provisioned.env.settings
    if not signing.private_key_path(settings.home).exists():
        signing.keygen(settings.home)
    # The tiers' pack poll intervals, shortened for this module (the inventory's own knob, as an operator would).
    inv = inventory.load(settings.inventories, provisioned.client)
    group_vars = inv.path / "group_vars" / "all.yml"
    original = group_vars.read_text()
    group_vars.write_text(original + f"sentry_tier_overrides:\n  pack_poll_seconds: {POLL_SECONDS}\n")
    try:
        with running_telemetry(provisioned) as tel:
            d = Defence(tel, tmp_path_factory.mktemp("defence"))
            try:
                yield d
            finally:
                # Leave the hosts as the other modules expect them: no pack (the release's own rules), nothing
                # of a pack in the ban sets.
                names = [h.name for h in d.hosts()]
                with d.ledger() as ledger:
                    ledger.assign_pack(d.client, names, None, None, actor="test teardown")
                d.wait_digest(names, None, 60)
                for host in d.hosts():
                    provisioned.env.ssh(host, "nft flush set inet sentry banned_v4", check=False)
    finally:
        group_vars.write_text(original)
