"""Hostile inventories against real hosts: no value can weaken SSH or run a command on the controller.

Every attempt points a ProxyCommand (or a script) at a marker file on the controller: the marker must never
appear, and the attempt must fail before any connection with one line, or (where the loader was bypassed on
purpose) sentryctl's own SSH settings must win.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator import inventory
from orchestrator.lab.manager import LAB_MARKER
from orchestrator.runner import RunRequest, run_playbook, tail_stdout

from .conftest import LabEnv

pytestmark = pytest.mark.lab
PLAYBOOKS = Path(__file__).parent / "playbooks"
SENTRYCTL = Path(sys.executable).parent / "sentryctl"


def hostile_copy(lab_env: LabEnv, name: str) -> Path:
    """A client inventory `name` next to the lab's, with the same hosts and pins."""
    target = lab_env.settings.inventories / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(lab_env.inventory.path, target)
    (target / LAB_MARKER).unlink(missing_ok=True)
    meta = yaml.safe_load((target / "client.yml").read_text())
    meta.pop("lab", None)
    (target / "client.yml").write_text(yaml.safe_dump({**meta, "client": name}))
    return target


def sentryctl(lab_env: LabEnv, *args: str) -> subprocess.CompletedProcess[str]:
    s = lab_env.settings
    argv = [str(SENTRYCTL), "--home", str(s.home), "--inventories", str(s.inventories), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def proxy(marker: Path) -> str:
    return f"sh -c 'touch {marker}; exec nc %h %p'"


def test_newline_in_ansible_user_cannot_reach_ssh_config(lab_env: LabEnv, tmp_path: Path) -> None:
    """Confirmed before: the ProxyCommand ran on the controller during `sentryctl audit`."""
    marker = tmp_path / "ran-on-controller"
    inv = hostile_copy(lab_env, "evil-user")
    hosts = yaml.safe_load((inv / "hosts.yml").read_text())
    hosts["all"]["vars"]["ansible_user"] = f"root\n  ProxyCommand {proxy(marker)}\n  StrictHostKeyChecking no"
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    # audit's contract: 4 when it could not start; everything else: 1.
    for code, args in (
        (4, ["audit", "--client", "evil-user", "--no-converge-check"]),
        (1, ["preflight", "-c", "evil-user"]),
    ):
        proc = sentryctl(lab_env, *args)
        assert proc.returncode == code, proc.stderr + proc.stdout
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("-->")]
        assert len(errors) == 1 and "variable ansible_user: invalid SSH user" in errors[0], proc.stderr
        assert not marker.exists()


@pytest.mark.parametrize("where", ["hosts.yml", "group_vars/all.yml"])
def test_ssh_args_in_the_inventory_are_refused_before_any_connection(
    lab_env: LabEnv, tmp_path: Path, where: str
) -> None:
    """Confirmed before: ansible_ssh_args replaced the strict SSH settings of every Ansible run."""
    marker = tmp_path / "ran-on-controller"
    inv = hostile_copy(lab_env, "evil-args")
    evil = {"ansible_ssh_args": f'-o ProxyCommand="{proxy(marker)}" -o StrictHostKeyChecking=no'}
    if where == "hosts.yml":
        hosts = yaml.safe_load((inv / "hosts.yml").read_text())
        hosts["all"]["vars"].update(evil)
        (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    else:
        with (inv / where).open("a") as fh:
            fh.write(yaml.safe_dump(evil))
    for args in (["provision", "--client", "evil-args", "--dry-run"], ["exec", "--client", "evil-args", "--", "id"]):
        proc = sentryctl(lab_env, *args)
        assert proc.returncode == 1, proc.stderr + proc.stdout
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("-->")]
        assert len(errors) == 1 and where in errors[0], proc.stderr
        assert "variable ansible_ssh_args is not allowed in an inventory" in errors[0], proc.stderr
    assert not marker.exists()


def test_sentryctls_ssh_settings_win_even_past_the_loader(lab_env: LabEnv, tmp_path: Path) -> None:
    """Defence in depth: an inventory edited after it was validated (or a loader bug) still cannot replace the
    strict settings, because they are extra variables. One host's pin is wrong: it must stay unreachable."""
    marker = tmp_path / "ran-on-controller"
    inv_dir = hostile_copy(lab_env, "evil-late")
    inv = inventory.load(lab_env.settings.inventories, "evil-late")
    first, second = lab_env.hosts()[:2]
    pins = (inv_dir / "known_hosts").read_text().replace(first.host_key_pub, second.host_key_pub)
    (inv_dir / "known_hosts").write_text(pins)
    hosts = yaml.safe_load((inv_dir / "hosts.yml").read_text())
    weak = f'-o ProxyCommand="{proxy(marker)}" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'
    hosts["all"]["vars"].update(
        {
            "ansible_ssh_args": weak,
            "ansible_ssh_common_args": weak,
            "ansible_ssh_extra_args": weak,
            "ansible_host_key_checking": False,
            "ansible_connection": "ssh",
        }
    )
    (inv_dir / "hosts.yml").write_text(yaml.safe_dump(hosts))
    request = RunRequest(playbook=PLAYBOOKS / "fail_one.yml", inventory=inv, label="evil-late")
    result = run_playbook(request, lab_env.settings)
    assert not marker.exists(), tail_stdout(result)
    assert result.hosts[first.name].status == "unreachable", tail_stdout(result)
    assert result.hosts[second.name].status != "unreachable", tail_stdout(result)
    # Run results and artifacts are private, like everything under the home.
    run_dir = lab_env.settings.runs_dir / result.run_id
    modes = {p.relative_to(run_dir).as_posix(): p.stat().st_mode & 0o777 for p in run_dir.rglob("*")}
    assert modes["result.json"] == 0o600 and all(m in (0o600, 0o700) for m in modes.values()), modes
    assert lab_env.settings.runs_dir.stat().st_mode & 0o077 == 0


def test_an_executable_hosts_file_is_never_run_as_a_script(lab_env: LabEnv, tmp_path: Path) -> None:
    """Ansible's script inventory plugin runs an executable inventory file on the controller; only the YAML
    plugin is enabled. The file below is valid YAML and, run by sh, would touch the marker."""
    marker = tmp_path / "ran-on-controller"
    inv_dir = hostile_copy(lab_env, "evil-script")
    inv = inventory.load(lab_env.settings.inventories, "evil-script")
    host = lab_env.hosts()[0]
    key = lab_env.lab.key
    (inv_dir / "hosts.yml").write_text(
        "#!/bin/sh\n"
        "all:\n"
        f"  vars: {{ansible_user: root, ansible_ssh_private_key_file: {key}}}\n"
        "  hosts:\n"
        f'    {host.name}: {{ansible_host: {host.address}, sentry_note: "$(touch {marker})"}}\n'
    )
    os.chmod(inv_dir / "hosts.yml", 0o755)
    request = RunRequest(playbook=PLAYBOOKS / "fail_one.yml", inventory=inv, label="evil-script", limit=host.name)
    result = run_playbook(request, lab_env.settings)
    assert not marker.exists(), tail_stdout(result)
    assert host.name in result.hosts, tail_stdout(result)


def test_exec_never_records_a_vaulted_secret(lab_env: LabEnv, tmp_path: Path) -> None:
    """The ledger is hash-chained and copied into evidence bundles: a vaulted value printed by a command is
    masked there, and --no-record-output keeps no output at all. Run results are private (0600 in 0700)."""
    import json

    hostile_copy(lab_env, "sec-exec")
    token = "TOKEN-" + os.urandom(8).hex()
    s = lab_env.settings
    argv = [str(SENTRYCTL), "--home", str(s.home), "--inventories", str(s.inventories)]
    subprocess.run([*argv, "client", "secret", "set", "collector_token", "-c", "sec-exec"], input=f"{token}\n",
                   text=True, check=True, capture_output=True, timeout=60)  # fmt: skip
    host = lab_env.hosts()[0].name
    shown = sentryctl(lab_env, "exec", "-c", "sec-exec", "--limit", host, "--", f"echo {token}; echo {token} >&2")
    assert shown.returncode == 0 and token in shown.stdout, shown.stderr  # the person running it still sees it
    quiet = sentryctl(lab_env, "exec", "-c", "sec-exec", "--limit", host, "--no-record-output", "--", "echo hidden")
    assert quiet.returncode == 0, quiet.stderr
    runs = json.loads(sentryctl(lab_env, "ledger", "runs", "-c", "sec-exec", "--kind", "exec", "--json").stdout)
    recorded = json.dumps(runs)
    assert token not in recorded and "***" in recorded
    assert "hidden" not in recorded.replace("echo hidden", ""), recorded  # only the command, not its output
    events = sentryctl(lab_env, "ledger", "log", "-c", "sec-exec", "--json").stdout
    assert token not in events
