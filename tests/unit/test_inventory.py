"""Loading client inventories into typed records, and refusing malformed ones with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import inventory
from orchestrator.errors import InventoryError


def write(tmp_path: Path, text: str, client: str = "acme") -> Path:
    d = tmp_path / client
    d.mkdir(parents=True, exist_ok=True)
    (d / "hosts.yml").write_text(text)
    (d / "client.yml").write_text(f"client: {client}\ntier: essentials\n")
    return tmp_path


def test_hosts_with_group_and_host_vars(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
all:
  vars: {ansible_user: deploy}
  hosts:
    web1: {ansible_host: 192.0.2.10}
  children:
    game:
      vars: {ansible_port: 2222}
      hosts:
        game1: {ansible_host: game1.example.com}
        game2: {ansible_host: "2001:db8::5", ansible_user: root}
""",
    )
    inv = inventory.load(tmp_path, "acme")
    hosts = {h.name: h for h in inv.hosts}
    assert hosts["web1"] == inventory.Host("web1", "192.0.2.10", 22, "deploy")
    assert hosts["game1"].port == 2222 and hosts["game1"].user == "deploy"
    assert hosts["game2"].user == "root" and hosts["game2"].known_hosts_name == "[2001:db8::5]:2222"
    assert inv.known_hosts == tmp_path / "acme" / "known_hosts"
    assert [h.name for h in inv.select("game*")] == ["game1", "game2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("all:\n  hosts:\n    a: {ansible_host: 'not an address!'}\n", "invalid host address"),
        ("all:\n  hosts:\n    a: {ansible_host: 192.0.2.1, ansible_port: 70000}\n", "invalid SSH port"),
        ("all:\n  hosts:\n    a: {ansible_host: 192.0.2.1}\n    b: {ansible_host: 192.0.2.1}\n", "share 192.0.2.1:22"),
        ("all:\n  hosts: {}\n", "lists no hosts"),
        ("- just a list\n", "top-level 'all'"),
        ("all: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_inventories_are_refused(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, text)
    with pytest.raises(InventoryError, match=message):
        inventory.load(tmp_path, "acme")


def test_missing_client_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as err:
        inventory.load(tmp_path, "nobody")
    assert "client new" in str(err.value)


@pytest.mark.parametrize("name", ["Acme", "-acme", "acme_co", "", "a" * 41, "acme-"])
def test_invalid_client_names(name: str) -> None:
    with pytest.raises(InventoryError, match="invalid client name"):
        inventory.validate_client_name(name)


def test_limit_matching_nothing_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "all:\n  hosts:\n    a: {ansible_host: 192.0.2.1}\n")
    with pytest.raises(InventoryError, match="matches no host"):
        inventory.load(tmp_path, "acme").select("zzz")


def test_hosts_resolve_exactly_as_ansible_inventory_does(tmp_path: Path) -> None:
    """Ansible's precedence, not a hand-written one: of two sibling groups the later by name wins (not the later
    in the file), and group_vars/all beats a child group's vars in hosts.yml. ansible-inventory (a real
    subprocess) is the reference."""
    write(
        tmp_path,
        """
all:
  children:
    game:
      vars: {ansible_port: 2222}
      hosts:
        g1: {}
        g2: {ansible_host: 192.0.2.12}
    b_team:
      vars: {ansible_user: bob}
      hosts: {g1: {}}
    a_team:
      vars: {ansible_user: alice}
      hosts: {g1: {}}
""",
    )
    folder = tmp_path / "acme"
    (folder / "group_vars").mkdir()
    (folder / "group_vars" / "all.yml").write_text("ansible_port: 2200\n")
    (folder / "host_vars").mkdir()
    (folder / "host_vars" / "g1.yml").write_text("ansible_host: 192.0.2.11\nansible_ssh_private_key_file: /k/id\n")

    inv = inventory.load(tmp_path, "acme")
    assert inv.hosts == (
        inventory.Host("g1", "192.0.2.11", 2200, "bob", Path("/k/id")),
        inventory.Host("g2", "192.0.2.12", 2200, "root"),
    )
    tool = Path(sys.executable).with_name("ansible-inventory")
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_INVENTORY_ENABLED": "yaml"}
    listed = subprocess.run(
        [str(tool), "-i", str(folder / "hosts.yml"), "--list"],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=folder,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    for host in inv.hosts:
        theirs = hostvars[host.name]
        key = theirs.get("ansible_ssh_private_key_file")
        assert (theirs.get("ansible_host", host.name), theirs.get("ansible_port", 22)) == (host.address, host.port)
        assert (theirs.get("ansible_user", "root"), Path(key) if key else None) == (host.user, host.key_file)


def test_an_executable_hosts_file_is_read_not_run(tmp_path: Path) -> None:
    """ansible-core's script plugin would execute an executable inventory file; sentryctl reads it as YAML only."""
    marker = tmp_path / "ran"
    write(
        tmp_path,
        f"#!/usr/bin/env -S sh -c 'touch {marker}; echo {{}}'\nall:\n  hosts:\n    a: {{ansible_host: 192.0.2.1}}\n",
    )
    (tmp_path / "acme" / "hosts.yml").chmod(0o755)
    inv = inventory.load(tmp_path, "acme")
    assert [h.address for h in inv.hosts] == ["192.0.2.1"]
    assert not marker.exists()
