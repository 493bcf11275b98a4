"""The interval silence is judged by: what provisioning gives the agent (tier, then the inventory's
``sentry_tier_overrides``), per host; the ledger's tier when this machine has no inventory of the client."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.fleet import expected_intervals
from orchestrator.ledger import ClientRecord, HostRecord
from orchestrator.tiers import get_tier

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def client(tier: str = "essentials", hosts: tuple[str, ...] = ("g1", "g2")) -> ClientRecord:
    recs = tuple(HostRecord(name=h, address=f"10.0.0.{i + 1}", port=22, added_at=NOW) for i, h in enumerate(hosts))
    return ClientRecord(id=1, name="acme", tier=tier, meta={}, created_at=NOW, hosts=recs)


def inventory(
    root: Path, tier: str = "essentials", group_vars: str = "", host_vars: dict[str, str] | None = None
) -> Path:
    d = root / "acme"
    (d / "group_vars").mkdir(parents=True)
    (d / "hosts.yml").write_text("all:\n  hosts:\n    g1: {ansible_host: 10.0.0.1}\n    g2: {ansible_host: 10.0.0.2}\n")
    (d / "client.yml").write_text(f"client: acme\ntier: {tier}\n")
    (d / "group_vars" / "all.yml").write_text(f"sentry_client: acme\nsentry_tier: {tier}\n{group_vars}")
    for host, text in (host_vars or {}).items():
        (d / "host_vars").mkdir(exist_ok=True)
        (d / "host_vars" / f"{host}.yml").write_text(text)
    return root


def test_without_an_inventory_the_ledgers_tier_decides(tmp_path: Path) -> None:
    want = float(get_tier("enterprise").heartbeat_interval_seconds)
    assert expected_intervals(tmp_path, client("enterprise")) == {"g1": want, "g2": want}
    assert expected_intervals(None, client("enterprise")) == {"g1": want, "g2": want}


def test_the_inventorys_tier_and_overrides_decide_per_host(tmp_path: Path) -> None:
    root = inventory(
        tmp_path,
        tier="essentials",
        group_vars="sentry_tier_overrides:\n  heartbeat_interval_seconds: 5\n",
        host_vars={"g2": "sentry_tier: enterprise\nsentry_tier_overrides: {}\n"},
    )
    # The ledger says professional; the inventory (what provisioning applies) wins.
    got = expected_intervals(root, client("professional"))
    assert got == {"g1": 5.0, "g2": float(get_tier("enterprise").heartbeat_interval_seconds)}


@pytest.mark.parametrize("bad", ["often", "0", "-5", ".inf", "1e9"])
def test_a_malformed_override_is_one_line_naming_the_file(tmp_path: Path, bad: str) -> None:
    root = inventory(tmp_path, group_vars=f"sentry_tier_overrides:\n  heartbeat_interval_seconds: {bad}\n")
    with pytest.raises(InventoryError, match="malformed heartbeat interval for host g1") as raised:
        expected_intervals(root, client())
    assert "group_vars/all.yml" in str(raised.value)
