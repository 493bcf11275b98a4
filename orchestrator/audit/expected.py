"""What a host should be, as Sentry's records say: the client's inventory (group_vars, host_vars), the tier
definitions (playbooks/vars/tiers.yml) and the ledger (the release each host runs).

An audit compares hosts with this record; nothing here touches a host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InventoryError
from ..inventory import Inventory
from ..ledger import HostReleaseRecord
from ..tiers import get_tier, tier_definition


@dataclass(frozen=True)
class Expected:
    client: str
    host: str
    tier: str
    components: frozenset[str]
    release: str | None  # what the ledger says the host runs; None when it records nothing
    mgmt_networks: tuple[str, ...]
    game_ports_tcp: tuple[int, ...]
    game_ports_udp: tuple[int, ...]
    support_contact: str
    support_hours: str
    heartbeat_interval_seconds: int
    rule_overrides: Mapping[str, Any] = field(default_factory=dict)
    fail2ban_maxretry: int | None = None
    ssh_user: str = "root"

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "host": self.host,
            "tier": self.tier,
            "components": sorted(self.components),
            "release": self.release,
            "mgmt_networks": list(self.mgmt_networks),
            "game_ports_tcp": list(self.game_ports_tcp),
            "game_ports_udp": list(self.game_ports_udp),
            "support_contact": self.support_contact,
            "support_hours": self.support_hours,
            "heartbeat_interval_seconds": self.heartbeat_interval_seconds,
            "fail2ban_maxretry": self.fail2ban_maxretry,
        }


def _yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InventoryError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(f"{path} must be a YAML mapping")
    return data


def host_vars(inv: Inventory, host: str) -> dict[str, Any]:
    """The client's group_vars with the host's own host_vars on top (as Ansible merges them for this layout)."""
    return {**_yaml(inv.path / "group_vars" / "all.yml"), **_yaml(inv.path / "host_vars" / f"{host}.yml")}


def expected_state(inv: Inventory, releases: Mapping[str, HostReleaseRecord]) -> dict[str, Expected]:
    """Expected state for every host of the inventory, given the ledger's releases by host name."""
    result = {}
    for h in inv.hosts:
        hv = host_vars(inv, h.name)
        tier_name = str(hv.get("sentry_tier") or inv.tier or "")
        tier = get_tier(tier_name)
        definition = tier_definition(tier_name)
        record = releases.get(h.name)
        try:
            result[h.name] = Expected(
                client=inv.client,
                host=h.name,
                tier=tier_name,
                components=frozenset(tier.components),
                release=record.release_version if record else None,
                mgmt_networks=tuple(str(n) for n in hv.get("sentry_mgmt_networks") or ()),
                game_ports_tcp=tuple(int(p) for p in hv.get("sentry_game_ports_tcp") or ()),
                game_ports_udp=tuple(int(p) for p in hv.get("sentry_game_ports_udp") or ()),
                support_contact=str(hv.get("sentry_support_contact", "")),
                support_hours=str(definition.get("support_hours", "")),
                heartbeat_interval_seconds=int(definition.get("heartbeat_interval_seconds", 0)),
                rule_overrides=dict(definition.get("agent_rule_overrides") or {}),
                fail2ban_maxretry=int(definition["fail2ban"]["maxretry"]) if "ids" in tier.components else None,
                ssh_user=h.user,
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise InventoryError(
                f"inventory of {inv.client} has a malformed stack variable for host {h.name}: {exc}",
                hint=f"check {inv.path / 'group_vars' / 'all.yml'} and host_vars/{h.name}.yml",
            ) from exc
    return result
