"""Client scaffolding: validation of every input, rendering with StrictUndefined, atomic writes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from orchestrator import clients, inventory
from orchestrator.errors import InventoryError
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings

GOOD = {
    "name": "acme",
    "tier": "professional",
    "hosts": ["game1=203.0.113.10", "game2=203.0.113.11:2222", "v6=[2001:db8::7]:22"],
    "mgmt_networks": ["198.51.100.0/24"],
    "window_text": "Mon-Fri 02:00-05:00 Europe/Madrid",
    "game_ports": ["7777", "27015/udp"],
    "contacts": ["Ana Ops <ana@acme.example>"],
}


def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    (tmp_path / "home").mkdir(exist_ok=True)
    with Ledger.open(None, tmp_path / "home") as opened:
        yield opened  # type: ignore[misc]


def test_rendered_inventory_loads_back(tmp_path: Path, ledger: Ledger) -> None:
    spec = clients.build_spec(**GOOD)  # type: ignore[arg-type]
    inv = clients.create(settings(tmp_path), spec, ledger)
    assert [(h.name, h.address, h.port) for h in inv.hosts] == [
        ("game1", "203.0.113.10", 22),
        ("game2", "203.0.113.11", 2222),
        ("v6", "2001:db8::7", 22),
    ]
    assert inv.tier == "professional" and inv.meta["window"] == GOOD["window_text"]
    assert inv.meta["contacts"] == ["Ana Ops <ana@acme.example>"]
    gv = yaml.safe_load((inv.path / "group_vars/all.yml").read_text())
    assert gv["sentry_game_ports_tcp"] == [7777] and gv["sentry_game_ports_udp"] == [7777, 27015]
    assert gv["sentry_mgmt_networks"] == ["198.51.100.0/24"] and gv["sentry_tier"] == "professional"
    assert not inv.known_hosts.exists()
    record = ledger.client("acme")
    assert record is not None and record.tier == "professional"
    assert sorted(h.name for h in ledger.hosts("acme")) == ["game1", "game2", "v6"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tier": "platinum"}, "unknown tier"),
        ({"hosts": ["a=203.0.113.1", "a=203.0.113.2"]}, "duplicate host name 'a'"),
        ({"hosts": ["a=203.0.113.1", "b=203.0.113.1"]}, "share the address"),
        ({"hosts": ["a=999.1.1.1"]}, "invalid host address"),
        ({"hosts": ["a=203.0.113.1:99999"]}, "invalid SSH port"),
        ({"hosts": ["justaname"]}, "invalid --host"),
        ({"hosts": []}, "at least one --host"),
        ({"mgmt_networks": ["198.51.100.7/24"]}, "invalid --mgmt-network"),
        ({"mgmt_networks": []}, "at least one --mgmt-network"),
        ({"window_text": "weekdays at night"}, "malformed maintenance window"),
        ({"window_text": "Mon 01:00-02:00 Nowhere/City"}, "unknown time zone"),
        ({"game_ports": ["70000"]}, "invalid --game-port"),
        ({"contacts": ["no mail here"]}, "invalid --contact"),
        ({"name": "Acme Inc"}, "invalid client name"),
        ({"user": "root; rm -rf /"}, "invalid --user"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(InventoryError, match=message):
        clients.build_spec(**{**GOOD, **change})  # type: ignore[arg-type]


def _key(seed: bytes) -> str:
    """A well-formed ed25519 public key blob (known_hosts entries are checked when an inventory loads)."""
    return base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + seed.ljust(32, b"\x00")).decode()


def test_existing_client_is_not_overwritten_unless_forced(tmp_path: Path, ledger: Ledger) -> None:
    s = settings(tmp_path)
    spec = clients.build_spec(**GOOD)  # type: ignore[arg-type]
    inv = clients.create(s, spec, ledger)
    keep, gone = _key(b"k"), _key(b"g")
    inv.known_hosts.write_text(f"203.0.113.10 ssh-ed25519 {keep}\n[203.0.113.11]:2222 ssh-ed25519 {gone}\n")
    before = (inv.path / "hosts.yml").read_text()
    with pytest.raises(InventoryError, match="already exists"):
        clients.create(s, spec, ledger)
    assert (inv.path / "hosts.yml").read_text() == before
    moved = clients.build_spec(**{**GOOD, "hosts": ["game1=203.0.113.10", "game2=203.0.113.99"]})  # type: ignore[arg-type]
    clients.create(s, moved, ledger, force=True)
    assert sorted(h.name for h in ledger.hosts("acme")) == ["game1", "game2"]
    assert inv.known_hosts.read_text() == f"203.0.113.10 ssh-ed25519 {keep}\n"  # the moved host lost its pin
    assert sorted(p.name for p in (tmp_path / "inv").iterdir()) == ["acme"]  # no staging leftovers


def test_strict_undefined_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ledger: Ledger) -> None:
    spec = clients.build_spec(**GOOD)  # type: ignore[arg-type]
    monkeypatch.setattr(clients, "SUPPORT_CONTACT", None)
    real_render = clients.render

    def render_without_contact(spec: clients.ClientSpec, now: object = None) -> dict[str, str]:
        env = clients.template_env()
        return {"x": env.from_string("{{ missing_variable }}").render({})}

    monkeypatch.setattr(clients, "render", render_without_contact)
    with pytest.raises(Exception, match="missing_variable"):
        clients.create(settings(tmp_path), spec, ledger)
    assert not (tmp_path / "inv" / "acme").exists()
    assert real_render(spec)  # the real templates need nothing that is not given


def test_list_and_remove(tmp_path: Path, ledger: Ledger) -> None:
    s = settings(tmp_path)
    clients.create(s, clients.build_spec(**GOOD), ledger)  # type: ignore[arg-type]
    assert [i.client for i in clients.list_clients(s)] == ["acme"]
    clients.remove(s, "acme", ledger)
    assert ledger.client("acme") is None and ledger.clients(include_removed=True)
    assert clients.list_clients(s) == []
    with pytest.raises(InventoryError):
        inventory.load(s.inventories, "acme")
