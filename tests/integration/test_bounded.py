"""Every wait is bounded: a tarpit host (accepts TCP, never speaks SSH) and a host whose commands hang fail in
time, and the other hosts finish normally; a run past its run timeout is killed with its SSH children.

The tarpit is a listener on the controller's loopback that one host of a copied inventory points at (with that
host's pinned key, so nothing but the silence is wrong). The hang is a systemctl that blocks while a marker file
exists on the host: Ansible's service modules, the audit's checks and the smoke checks all call it.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from orchestrator import adhoc, inventory, provision, sshmux
from orchestrator.audit import run_audit
from orchestrator.inventory import Inventory
from orchestrator.ledger import Ledger
from orchestrator.runner import RunRequest, run_playbook, run_processes, tail_stdout

from .conftest import LabEnv, Provisioned
from .test_audit import auditable  # noqa: F401 - the provisioned client with a signing key

pytestmark = pytest.mark.lab
PLAYBOOKS = Path(__file__).parent / "playbooks"
HANG_MARKER = "/run/sentry-test-hang"
# Blocks while the marker exists, then behaves as systemctl: removing the marker ends every hung call.
HANG_WRAPPER = f'#!/bin/sh\nwhile [ -e {HANG_MARKER} ]; do sleep 0.2; done\nexec /usr/bin/systemctl.real "$@"\n'


@pytest.fixture
def tarpit() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never writes a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def with_tarpit(inv: Inventory, host: str, port: int, root: Path) -> Inventory:
    """A copy of ``inv`` (same client name) in which ``host`` is the tarpit, its pinned key kept."""
    copy = root / inv.client
    shutil.copytree(inv.path, copy)
    hosts_file = copy / "hosts.yml"
    data = yaml.safe_load(hosts_file.read_text())
    data["all"]["hosts"][host].update({"ansible_host": "127.0.0.1", "ansible_port": port})
    hosts_file.write_text(yaml.safe_dump(data))
    key = next(line.split(None, 1)[1] for line in inv.known_hosts.read_text().splitlines() if line.strip())
    with (copy / "known_hosts").open("a") as fh:
        fh.write(f"[127.0.0.1]:{port} {key}\n")
    return inventory.load(root, inv.client)


@contextmanager
def hanging(ssh: Callable[[str], object]) -> Iterator[None]:
    """Make systemctl hang on the host that ``ssh`` runs commands on, until the block ends."""
    ssh(f"mv /usr/bin/systemctl /usr/bin/systemctl.real && cat > /usr/bin/systemctl <<'EOF'\n"
        f"{HANG_WRAPPER}EOF\nchmod 755 /usr/bin/systemctl && touch {HANG_MARKER}")  # fmt: skip
    try:
        yield
    finally:
        ssh(f"rm -f {HANG_MARKER}; mv /usr/bin/systemctl.real /usr/bin/systemctl")


def on(env: LabEnv, name: str) -> Callable[[str], object]:
    host = next(h for h in env.hosts() if h.name == name)
    return lambda command: env.ssh(host, command)


def test_ansible_runs_are_bounded_for_a_tarpit_a_hung_task_and_the_whole_run(
    lab_env: LabEnv, tmp_path: Path, tarpit: int
) -> None:
    first, second, third = (h.name for h in lab_env.hosts())
    inv = with_tarpit(lab_env.inventory, third, tarpit, tmp_path / "inv")
    # A task hung on one host fails that host at the task timeout; a tarpit is unreachable at the connect timeout.
    started = time.monotonic()
    hung = RunRequest(playbook=PLAYBOOKS / "hang.yml", inventory=inv, label="hang", extravars={"doomed": second},
                      task_timeout=8, timeout=3)  # fmt: skip
    result = run_playbook(hung, lab_env.settings)
    assert time.monotonic() - started < 60, tail_stdout(result)
    assert {h: o.status for h, o in result.hosts.items()} == {
        first: "changed",
        second: "failed",
        third: "unreachable",
    }, tail_stdout(result)
    assert "Timed out after" in (result.artifact_dir / "stdout").read_text()
    # The whole run past its run timeout: killed with its SSH children; every host it had not finished failed.
    started = time.monotonic()
    killed = RunRequest(playbook=PLAYBOOKS / "hang.yml", inventory=lab_env.inventory, label="hang-run",
                        extravars={"doomed": second}, run_timeout=8)  # fmt: skip
    result = run_playbook(killed, lab_env.settings)
    assert time.monotonic() - started < 40
    assert result.status == "timeout" and not result.ok
    assert result.by_status("failed") == sorted([first, second, third]), result.to_json()
    assert run_processes(result.artifact_dir.parent.parent) == []


def test_provision_fails_a_hung_host_in_time_and_converges_the_others(provisioned: Provisioned) -> None:
    env = provisioned.env
    first, second = (h.name for h in env.hosts()[:2])
    started = time.monotonic()
    with hanging(on(env, second)), Ledger.open(env.settings.db_url, env.settings.home) as ledger:
        result = provision.provision(
            env.settings, provisioned.client, ledger, limit=f"{first},{second}", task_timeout=10
        )
    assert result.run is not None, result.preflight.to_json()
    assert time.monotonic() - started < 240, tail_stdout(result.run)
    assert result.run.hosts[first].status in ("ok", "changed"), tail_stdout(result.run)
    assert result.run.hosts[second].status == "failed", tail_stdout(result.run)
    assert "Timed out after" in (result.run.artifact_dir / "stdout").read_text()


def test_provision_leaves_a_tarpit_out_in_time_and_converges_the_others(
    provisioned: Provisioned, tmp_path: Path, tarpit: int
) -> None:
    env = provisioned.env
    first, second, third = (h.name for h in env.hosts())
    inv = with_tarpit(inventory.load(env.settings.inventories, provisioned.client), third, tarpit, tmp_path / "inv")
    settings = dataclasses.replace(env.settings, inventories=inv.path.parent)
    started = time.monotonic()
    with Ledger.open(settings.db_url, settings.home) as ledger:
        result = provision.provision(settings, provisioned.client, ledger)
    assert time.monotonic() - started < 240
    assert result.preflight.failed == [third], result.preflight.to_json()
    assert result.run is not None and not result.ok
    # Converged (earlier tests leave the shared hosts with something to do, so "changed" counts as well).
    statuses = {h: o.status for h, o in result.run.hosts.items()}
    assert set(statuses) == {first, second} and set(statuses.values()) <= {"ok", "changed"}, tail_stdout(result.run)
    assert (result.reasons or {})[third].startswith("preflight: "), result.reasons


def test_health_probe_and_smoke_checks_are_bounded_for_a_tarpit_and_a_hung_host(
    provisioned: Provisioned, tmp_path: Path, tarpit: int
) -> None:
    from orchestrator.rollout.probe import wait_healthy
    from orchestrator.rollout.smoke import run_smoke

    env = provisioned.env
    first, second, third = (h.name for h in env.hosts())
    inv = with_tarpit(inventory.load(env.settings.inventories, provisioned.client), third, tarpit, tmp_path / "inv")
    started = time.monotonic()
    health = wait_healthy(inv, inv.hosts, None, timeout=6, home=env.settings.home)
    # The whole wait is bounded by its timeout, connecting included (one probe never outlives what is left).
    assert time.monotonic() - started < 6 + 3, health
    assert health[first].healthy and health[second].healthy, health
    assert not health[third].healthy and "probe failed" in health[third].detail, health[third]
    version = health[first].version
    assert version is not None
    started = time.monotonic()
    try:
        with hanging(on(env, second)):
            smoke = run_smoke(inv, inv.hosts, version, env.settings.home, command_timeout=5)
    finally:
        # The killed commands' connection masters are this test's own: nothing of them outlives it.
        sshmux.close_masters(sshmux.masters_dir(env.settings.home, inv.known_hosts))
    assert time.monotonic() - started < 90, smoke
    assert smoke[first].passed, smoke[first]
    assert not smoke[second].passed and any("within 5s" in f for f in smoke[second].failures), smoke[second]
    assert not smoke[third].passed, smoke[third]


def test_exec_bounds_each_command_and_a_tarpit(provisioned: Provisioned, tmp_path: Path, tarpit: int) -> None:
    env = provisioned.env
    first, second, third = (h.name for h in env.hosts())
    inv = with_tarpit(inventory.load(env.settings.inventories, provisioned.client), third, tarpit, tmp_path / "inv")
    started = time.monotonic()
    with Ledger.open(env.settings.db_url, env.settings.home) as ledger:
        result = adhoc.run_command(inv, inv.hosts, f'[ "$(hostname)" = {second} ] && sleep 600; echo done', ledger,
                                   timeout=5)  # fmt: skip
    assert time.monotonic() - started < 40
    by_host = {o.host: o for o in result.outcomes}
    assert by_host[first].status == "ok" and by_host[first].stdout.strip() == "done"
    assert by_host[second].status != "ok" and "within 5 seconds" in (by_host[second].error or ""), by_host[second]
    assert by_host[third].status == "unreachable" and "banner" in (by_host[third].error or ""), by_host[third]


def test_audit_bounds_each_check_command_and_a_tarpit(auditable: Provisioned, tmp_path: Path, tarpit: int) -> None:  # noqa: F811
    env = auditable.env
    first, second, third = (h.name for h in env.hosts())
    inv = with_tarpit(inventory.load(env.settings.inventories, auditable.client), third, tarpit, tmp_path / "inv")
    settings = dataclasses.replace(env.settings, inventories=inv.path.parent)
    started = time.monotonic()
    with hanging(on(env, second)), Ledger.open(settings.db_url, settings.home) as ledger:
        outcome = run_audit(settings, auditable.client, ledger, out_dir=tmp_path / "out", converge_check=False,
                            command_timeout=5)  # fmt: skip
    assert time.monotonic() - started < 90
    assert outcome.exit_code == 4
    hosts = outcome.hosts
    assert not hosts[first].error, hosts[first]
    assert "did not finish within 5s" in (hosts[second].error or ""), hosts[second]
    assert "unreachable" in (hosts[third].error or ""), hosts[third]
