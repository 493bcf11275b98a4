"""Loading client inventories into typed records, and refusing malformed ones with a clear message."""

from __future__ import annotations

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
