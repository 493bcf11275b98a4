"""One lab of real hosts for the whole test session (booting is cheap, but building the image is not).

Every lab test shares it; tests that break a host must leave it healthy again. The image cache is shared
across sessions (SENTRY_LAB_CACHE), everything else lives in a temporary home that is removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator import inventory
from orchestrator.inventory import Inventory
from orchestrator.lab.manager import Lab
from orchestrator.lab.state import HostState
from orchestrator.settings import Settings

DEFAULT_CACHE = "/var/cache/sentryctl-lab"
LAB_HOSTS = 3


@dataclass
class LabEnv:
    settings: Settings
    lab: Lab

    @property
    def inventory(self) -> Inventory:
        return inventory.load(self.settings.inventories, self.lab.name)

    def hosts(self) -> list[HostState]:
        state = self.lab.state()
        assert state is not None
        return list(state.hosts.values())

    def ssh(self, host: HostState, command: str, check: bool = True, timeout: float = 60) -> str:
        proc = subprocess.run(
            [*self.lab.ssh_argv(host), command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check:
            assert proc.returncode == 0, f"{host.name}: {command!r} failed: {proc.stderr}{proc.stdout}"
        return proc.stdout


@pytest.fixture(scope="session")
def lab_cache() -> str:
    cache = os.environ.get("SENTRY_LAB_CACHE", DEFAULT_CACHE)
    os.environ["SENTRY_LAB_CACHE"] = cache
    return cache


@pytest.fixture(scope="session")
def lab_env(tmp_path_factory: pytest.TempPathFactory, lab_cache: str) -> Iterator[LabEnv]:
    root = tmp_path_factory.mktemp("sentry")
    settings = Settings.from_env(home=root / "home", inventories=root / "inventories")
    lab = Lab(settings, "t")
    messages: list[str] = []
    try:
        lab.up(LAB_HOSTS, messages.append)
        yield LabEnv(settings, lab)
    finally:
        lab.down(messages.append)


def write_playbook(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path
