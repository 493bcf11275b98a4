"""Fixtures for the protection-stack tests: the shared lab's hosts, converged once with playbooks/site.yml by
the session's ``provisioned`` client (tests/integration/conftest.py), one tier per host.

Tests see one host at a time (``stack_host``) and that host's view of the inventory (``stack_inventory``): the
client's group_vars with the host's own host_vars on top, and its tier's definition from playbooks/vars/tiers.yml.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml

from orchestrator import inventory, remote

from ..conftest import LAB_HOSTS, Provisioned

REPO = Path(__file__).resolve().parents[3]
TIERS_FILE = REPO / "playbooks" / "vars" / "tiers.yml"


@dataclass(frozen=True)
class StackHost:
    name: str
    address: str
    port: int
    user: str
    key: str | None


@dataclass(frozen=True)
class StackInventory:
    path: Path
    hosts: tuple[StackHost, ...]
    group_vars: dict[str, Any]
    tier: dict[str, Any]

    @property
    def known_hosts(self) -> Path:
        return self.path.parent / "known_hosts"


def load_view(path: Path, host: str | None = None) -> StackInventory:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))["all"]
    common = data.get("vars", {})
    hosts = tuple(
        StackHost(
            name=name,
            address=str(hv.get("ansible_host", name)),
            port=int(hv.get("ansible_port", common.get("ansible_port", 22))),
            user=str(hv.get("ansible_user", common.get("ansible_user", "root"))),
            key=hv.get("ansible_ssh_private_key_file", common.get("ansible_ssh_private_key_file")),
        )
        for name, hv in sorted((data.get("hosts") or {}).items())
    )
    group_vars = yaml.safe_load((path.parent / "group_vars" / "all.yml").read_text(encoding="utf-8"))
    host_vars_file = path.parent / "host_vars" / f"{host}.yml"
    if host and host_vars_file.exists():
        group_vars = {**group_vars, **(yaml.safe_load(host_vars_file.read_text(encoding="utf-8")) or {})}
    tiers = yaml.safe_load(TIERS_FILE.read_text(encoding="utf-8"))["sentry_tiers"]
    tier = tiers[group_vars["sentry_tier"]]
    return StackInventory(path=path, hosts=hosts, group_vars=group_vars, tier=tier)


@pytest.fixture(scope="session", params=[f"t-{i}" for i in range(1, LAB_HOSTS + 1)])
def stack_host_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def site_inventory(provisioned: Provisioned) -> StackInventory:
    return load_view(provisioned.env.settings.inventories / provisioned.client / "hosts.yml")


@pytest.fixture(scope="session")
def stack_inventory(provisioned: Provisioned, stack_host_name: str) -> StackInventory:
    return load_view(provisioned.env.settings.inventories / provisioned.client / "hosts.yml", stack_host_name)


@pytest.fixture(scope="session")
def ssh_config(provisioned: Provisioned, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product's own ssh_config for testinfra: strict keys against the client's known_hosts, connection reuse."""
    root = tmp_path_factory.mktemp("stack-ssh")
    inv = inventory.load(provisioned.env.settings.inventories, provisioned.client)
    return remote.write_ssh_config(inv, root / "ssh_config", provisioned.env.settings.home)


@pytest.fixture(scope="session")
def stack_host(stack_host_name: str, ssh_config: Path) -> Iterator[Any]:
    yield testinfra.get_host(f"ssh://{stack_host_name}", ssh_config=str(ssh_config))
