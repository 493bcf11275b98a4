"""One lab of real hosts for the whole test session (booting is cheap, but building the image is not).

Every lab test shares it; tests that break a host must leave it healthy again. The image cache is shared
across sessions (SENTRY_LAB_CACHE), everything else lives in a temporary home that is removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
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


def session_subnet() -> str | None:
    """The session lab's /24: SENTRY_TEST_SUBNET pins it, so test runs started side by side never meet; under
    pytest-xdist each worker (gw0, gw1, ...) takes the next /24 after it. Unset: the lab picks a free one."""
    pinned = os.environ.get("SENTRY_TEST_SUBNET")
    if not pinned:
        return None
    import ipaddress

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    net = ipaddress.ip_network(pinned)
    return str(ipaddress.ip_network((int(net.network_address) + offset * net.num_addresses, net.prefixlen)))


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
        lab.up(LAB_HOSTS, messages.append, subnet=session_subnet())
        yield LabEnv(settings, lab)
    finally:
        lab.down(messages.append)


def write_playbook(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


@dataclass
class Provisioned:
    env: LabEnv
    client: str
    tiers: dict[str, str]  # host -> tier
    first: object  # ProvisionResult of the cold converge
    canary: str


TIER_BY_INDEX = {1: "essentials", 2: "professional", 3: "enterprise"}


@pytest.fixture(scope="session")
def provisioned(lab_env: LabEnv) -> Provisioned:
    """A client on the shared lab hosts, onboarded through the core API and converged once.

    Each host gets another tier (host_vars), so one converge exercises every tier's stack; the client has a
    canary collector token, so tests can prove it never leaks outside the hosts.
    """
    import secrets

    from orchestrator import clients, pins, provision, vault
    from orchestrator.ledger import Ledger

    settings = lab_env.settings
    state = lab_env.lab.state()
    assert state is not None
    hosts = lab_env.hosts()
    spec = clients.build_spec(
        name="prov",
        tier="professional",
        hosts=[f"{h.name}={h.address}" for h in hosts],
        mgmt_networks=[state.subnet],
        key_file=str(lab_env.lab.key),
        game_ports=["7777", "27015/udp"],
    )
    canary = f"CANARY{secrets.token_hex(12)}"
    with Ledger.open(settings.db_url, settings.home) as ledger:
        inv = clients.create(settings, spec, ledger)
        pins.apply(inv, pins.scan(inv, inv.hosts), ledger)
        tiers = {h.name: TIER_BY_INDEX[h.index] for h in hosts}
        (inv.path / "host_vars").mkdir(exist_ok=True)
        for name, tier in tiers.items():
            (inv.path / "host_vars" / f"{name}.yml").write_text(f"---\nsentry_tier: {tier}\n")
        vault.set_secret(settings, inv, "collector_token", canary, ledger)
        first = provision.provision(settings, "prov", ledger)
    assert first.ok, _run_tail(first)
    return Provisioned(lab_env, "prov", tiers, first, canary)


def _run_tail(result: object) -> str:
    from orchestrator.runner import tail_stdout

    run = getattr(result, "run", None)
    if run is None:
        return f"preflight: {getattr(result, 'preflight', None)}"
    return tail_stdout(run, 80)


def changed_tasks(run: object) -> list[str]:
    """'host: task' for every task a run reported changed (from its job events), for assertion messages."""
    import json

    found = []
    events = Path(run.artifact_dir) / "job_events"  # type: ignore[attr-defined]
    for path in sorted(events.glob("*.json")) if events.is_dir() else []:
        event = json.loads(path.read_text())
        data = event.get("event_data", {})
        if event.get("event") == "runner_on_ok" and data.get("res", {}).get("changed"):
            found.append(f"{data.get('host')}: {data.get('task')}")
    return found


def onboard(
    settings: Settings, lab: Lab, client: str, host_names: list[str], tier: str, ledger: object, **spec: object
) -> Inventory:
    """Onboard ``client`` on some of ``lab``'s hosts through the core API: its inventory (management network: the
    lab's subnet; the lab's key) and its pinned host keys. Not provisioned."""
    from orchestrator import clients, pins

    state = lab.state()
    assert state is not None
    built = clients.build_spec(
        name=client, tier=tier, hosts=[f"{n}={state.hosts[n].address}" for n in host_names],
        mgmt_networks=[state.subnet], key_file=str(lab.key), **spec,  # type: ignore[arg-type]
    )  # fmt: skip
    inv = clients.create(settings, built, ledger)  # type: ignore[arg-type]
    pins.apply(inv, pins.scan(inv, inv.hosts), ledger)  # type: ignore[arg-type]
    return inv


@contextmanager
def provisioned_lab(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    hosts: int,
    layout: dict[str, tuple[list[str], str]],
    tracks: dict[str, object],
) -> Iterator[tuple[Settings, Lab, dict[str, HostState], dict[str, str]]]:
    """A lab of its own (a subnet picked free) whose hosts are onboarded as the clients of ``layout`` (client ->
    (host names, tier)) and provisioned, with a signing key, ``tracks`` as each client's tracks.yml and a quick
    role health wait (a broken release fails in seconds, not a minute). Yields the settings, the lab, its hosts
    and the environment a ``sentryctl`` subprocess needs; the lab is removed afterwards."""
    import yaml

    from orchestrator import provision
    from orchestrator.ledger import Ledger
    from orchestrator.releases import signing

    root = tmp_path_factory.mktemp(name)
    settings = Settings.from_env(home=root / "home", inventories=root / "inv")
    lab = Lab(settings, name)
    lab.up(hosts, lambda _m: None)
    try:
        state = lab.state()
        assert state is not None
        signing.keygen(settings.home)
        with Ledger.open(settings.db_url, settings.home) as ledger:
            for client, (names, tier) in layout.items():
                inv = onboard(settings, lab, client, names, tier, ledger)
                (inv.path / "tracks.yml").write_text(yaml.safe_dump(tracks))
                gv = inv.path / "group_vars" / "all.yml"
                gv.write_text(gv.read_text() + "sentry_agent_health_retries: 6\nsentry_agent_health_delay: 2\n")
                result = provision.provision(settings, client, ledger)
                assert result.ok, result.run.to_json() if result.run else result.preflight.to_json()
        env = {**os.environ, "SENTRY_HOME": str(settings.home), "SENTRY_INVENTORIES": str(settings.inventories)}
        yield settings, lab, dict(state.hosts), env
    finally:
        lab.down(lambda _m: None)
