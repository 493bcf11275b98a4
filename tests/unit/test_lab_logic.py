"""Pure parts of the lab: names, subnets, addresses, mirror discovery, state persistence."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from orchestrator.errors import LabError, PrerequisiteError
from orchestrator.lab import image, net, system
from orchestrator.lab.state import HostState, LabState, lab_id, load, save, validate_name


@pytest.mark.parametrize("name", ["lab", "a", "ci2", "abcdefghijkl"])
def test_valid_lab_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "Lab", "2lab", "lab-1", "abcdefghijklm", "lab/../x"])
def test_invalid_lab_names(name: str) -> None:
    with pytest.raises(LabError, match="invalid lab name"):
        validate_name(name)


def test_subnet_parsing_and_addresses() -> None:
    subnet = net.parse_subnet("10.213.7.0/24")
    assert str(net.gateway(subnet)) == "10.213.7.1"
    assert str(net.host_address(subnet, 1)) == "10.213.7.11"
    small = net.parse_subnet("10.9.9.0/26")
    with pytest.raises(LabError, match="no room"):
        net.host_address(small, 60)
    for bad in ("8.8.8.0/24", "10.0.0.1/24", "fd00::/64", "10.0.0.0/28", "nonsense"):
        with pytest.raises(LabError):
            net.parse_subnet(bad)


def test_lab_id_is_stable_and_distinct(tmp_path: Path) -> None:
    assert lab_id(tmp_path / "a") == lab_id(tmp_path / "a")
    assert lab_id(tmp_path / "a") != lab_id(tmp_path / "b")
    assert len(f"sv{lab_id(tmp_path)}60p") <= 15  # Linux interface names are at most 15 bytes


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://security.invalid/debian-security\nSuites: bookworm-security\n"
    )
    assert image.mirror_from_sources(tmp_path) == "http://mirror.invalid/debian"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("# comment\ndeb [arch=amd64] http://m.invalid/debian bookworm main\n")
    assert image.mirror_from_sources(tmp_path) == "http://m.invalid/debian"
    (tmp_path / "sources.list").write_text("deb http://m.invalid/debian bullseye main\n")
    with pytest.raises(LabError, match="no Debian bookworm mirror"):
        image.mirror_from_sources(tmp_path)


def test_recipe_key_changes_with_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    key = image.recipe_key()
    monkeypatch.setattr(image, "REPO_PACKAGES", (*image.REPO_PACKAGES, "nginx"))
    assert image.recipe_key() != key


def test_state_round_trip_is_atomic(tmp_path: Path) -> None:
    state = LabState(
        name="lab",
        id="abc123",
        subnet="10.213.0.0/24",
        bridge="sbrabc123",
        image="/img",
        repo="/repo",
        repo_port=8780,
        inventory_dir="/inv/lab",
    )
    state.hosts["lab-1"] = HostState(
        "lab-1", 1, "10.213.0.11", "ns", "veth", "m", "cg", "/r", "ssh-ed25519 AAA", {"pid": 5, "start_ticks": 9}
    )
    path = tmp_path / "state.json"
    save(path, state)
    loaded = load(path)
    assert loaded == state
    assert loaded is not None and loaded.network == ipaddress.IPv4Network("10.213.0.0/24")
    assert not path.with_suffix(".tmp").exists()
    path.write_text("{broken")
    with pytest.raises(LabError, match="unreadable"):
        load(path)


def test_missing_tools_name_the_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrerequisiteError) as err:
        system.require_tools(("debootstrap", "systemd-nspawn"))
    assert "apt-get install -y debootstrap systemd-container" in str(err.value)
