"""The Ansible engine against real hosts: results come from the final stats, keys are checked strictly."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from orchestrator import inventory
from orchestrator.lab import machine
from orchestrator.runner import RunRequest, run_playbook, tail_stdout
from orchestrator.settings import Settings

from .conftest import LabEnv

pytestmark = pytest.mark.lab
PLAYBOOKS = Path(__file__).parent / "playbooks"


def run(lab_env: LabEnv, playbook: str, settings: Settings | None = None, **kw: object):  # type: ignore[no-untyped-def]
    request = RunRequest(
        playbook=PLAYBOOKS / playbook, inventory=kw.pop("inv", None) or lab_env.inventory, label=playbook, **kw
    )  # type: ignore[arg-type]
    return run_playbook(request, settings or lab_env.settings)


def test_package_from_lab_repo_as_a_service_and_idempotent(lab_env: LabEnv) -> None:
    first = run(lab_env, "webserver.yml")
    assert first.ok, tail_stdout(first)
    assert first.changed_total > 0
    for host in lab_env.hosts():
        assert lab_env.ssh(host, "systemctl is-active lighttpd").strip() == "active"
        # Same port 80 on every host at once, each answering with its own name.
        assert (
            lab_env.ssh(
                host,
                f"python3 -c \"import urllib.request as u;print(u.urlopen('http://{host.address}/').read().decode())\"",
            ).strip()
            == host.name
        )
    second = run(lab_env, "webserver.yml")
    assert second.ok, tail_stdout(second)
    assert second.changed_total == 0, second.to_json()


def test_check_mode_changes_nothing(lab_env: LabEnv) -> None:
    host = lab_env.hosts()[0]
    lab_env.ssh(host, "echo tampered > /var/www/html/index.html")
    result = run(lab_env, "webserver.yml", check=True, diff=True)
    assert result.ok, tail_stdout(result)
    assert result.hosts[host.name].changed == 1
    assert lab_env.ssh(host, "cat /var/www/html/index.html").strip() == "tampered"
    fixed = run(lab_env, "webserver.yml", limit=host.name)
    assert fixed.hosts[host.name].changed == 1 and set(fixed.hosts) == {host.name}


def test_failed_and_rescued_hosts_from_final_stats(lab_env: LabEnv) -> None:
    doomed = lab_env.hosts()[1].name
    result = run(lab_env, "fail_one.yml", extravars={"doomed": doomed})
    assert not result.ok
    assert result.by_status("failed") == [doomed]
    others = [h.name for h in lab_env.hosts() if h.name != doomed]
    assert sorted(result.by_status("ok")) == sorted(others)
    assert all(result.hosts[h].rescued == 1 for h in others)
    # The extra vars travelled as a file in the run's own directory, not on the command line. (The variable's
    # name is the needle: a host name like t-2 can occur inside any temp path, e.g. pytest-251.)
    argv = json.loads(next(result.artifact_dir.glob("command")).read_text())["command"]
    assert not any("doomed" in arg for arg in argv), argv
    sent = json.loads((result.artifact_dir.parent.parent / "extravars.json").read_text())
    assert sent["doomed"] == doomed and "StrictHostKeyChecking=yes" in sent["ansible_ssh_args"]


def test_changed_host_key_is_refused(lab_env: LabEnv, tmp_path: Path) -> None:
    first, second = lab_env.hosts()[:2]
    inv_dir = tmp_path / lab_env.lab.name
    shutil.copytree(lab_env.inventory.path, inv_dir)
    pinned = (inv_dir / "known_hosts").read_text().replace(first.host_key_pub, second.host_key_pub)
    (inv_dir / "known_hosts").write_text(pinned)
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path)  # fresh ControlPath dir
    result = run(lab_env, "webserver.yml", settings=settings, inv=inventory.load(tmp_path, lab_env.lab.name))
    assert result.by_status("unreachable") == [first.name], result.to_json()
    assert "host key" in tail_stdout(result, 200).lower()


def test_unreachable_host_when_sshd_stops(lab_env: LabEnv, tmp_path: Path) -> None:
    victim = lab_env.hosts()[2]
    # The host brings sshd back by itself, so the shared lab is healthy again after this test.
    lab_env.ssh(victim, "systemd-run --on-active=12s --unit=sentry-test-ssh-back systemctl start ssh.service")
    lab_env.ssh(victim, "systemctl stop ssh.service")
    try:
        settings = Settings.from_env(home=tmp_path / "home", inventories=lab_env.settings.inventories)
        result = run(lab_env, "webserver.yml", settings=settings, timeout=5)
        assert result.by_status("unreachable") == [victim.name], result.to_json()
        assert not result.ok
    finally:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not machine.ssh_banner(victim.address):
            time.sleep(0.5)
    assert machine.ssh_banner(victim.address)
