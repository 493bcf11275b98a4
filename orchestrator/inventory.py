"""Client inventories: the folder ``inventories/<client>/`` loaded into typed records.

Layout (the lab writes the same shape as ``client new`` will):
  hosts.yml            Ansible YAML inventory; every host has ansible_host, optionally ansible_port
  known_hosts          the pinned host keys; every SSH client checks against it strictly
  client.yml           client facts: name, tier, window, contacts
  group_vars/all.yml   the stack's inventory-level variables (sentry_*)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InventoryError

CLIENT_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$|^[a-z]$")
HOST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
DNS_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9-]{1,63})*$")


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    key_file: Path | None = None

    @property
    def known_hosts_name(self) -> str:
        """How this host is named in a known_hosts file (OpenSSH brackets non-default ports)."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


@dataclass(frozen=True)
class Inventory:
    client: str
    path: Path
    hosts: tuple[Host, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hosts_file(self) -> Path:
        return self.path / "hosts.yml"

    @property
    def known_hosts(self) -> Path:
        return self.path / "known_hosts"

    @property
    def tier(self) -> str | None:
        value = self.meta.get("tier")
        return str(value) if value is not None else None

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise InventoryError(f"client {self.client} has no host {name!r}", hint=f"known: {self.names()}")

    def names(self) -> str:
        return ", ".join(h.name for h in self.hosts)

    def select(self, limit: str | None) -> tuple[Host, ...]:
        """Hosts matching a comma-separated list of names or fnmatch patterns (a subset of Ansible's)."""
        if not limit:
            return self.hosts
        from fnmatch import fnmatchcase

        patterns = [p.strip() for p in limit.split(",") if p.strip()]
        chosen = tuple(h for h in self.hosts if any(fnmatchcase(h.name, p) for p in patterns))
        if not chosen:
            raise InventoryError(
                f"--limit {limit!r} matches no host of client {self.client}", hint=f"hosts: {self.names()}"
            )
        return chosen


def validate_client_name(name: str) -> str:
    if not CLIENT_NAME_RE.match(name):
        raise InventoryError(
            f"invalid client name {name!r}",
            hint="use lowercase letters, digits and dashes, starting with a letter (at most 40)",
        )
    return name


def validate_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        # All-numeric labels are a mistyped IPv4 address, never a name (RFC 1123 forbids a numeric TLD).
        if DNS_RE.match(value) and not value.rsplit(".", 1)[-1].isdigit():
            return value
    raise InventoryError(f"invalid host address {value!r}", hint="give an IPv4/IPv6 address or a DNS name")


def validate_port(value: object) -> int:
    try:
        port = int(str(value))
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise InventoryError(f"invalid SSH port {value!r}", hint="use a number from 1 to 65535")
    return port


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InventoryError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from exc


def _walk_groups(group: Mapping[str, Any], inherited: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    group_vars = {**inherited, **(group.get("vars") or {})}
    for name, hvars in (group.get("hosts") or {}).items():
        yield str(name), {**group_vars, **(hvars or {})}
    for child in (group.get("children") or {}).values():
        yield from _walk_groups(child or {}, group_vars)


def load(inventories: Path, client: str) -> Inventory:
    validate_client_name(client)
    return load_dir(inventories / client, client)


def load_dir(path: Path, client: str) -> Inventory:
    """Load the inventory in ``path`` as client ``client`` (the folder may be a staging copy)."""
    hosts_file = path / "hosts.yml"
    if not hosts_file.exists():
        raise InventoryError(
            f"no inventory for client {client!r} at {path}",
            hint="create it with 'sentryctl client new' (or 'sentryctl lab up' for the lab)",
        )
    data = _read_yaml(hosts_file) or {}
    if not isinstance(data, Mapping) or not isinstance(data.get("all"), Mapping):
        raise InventoryError(f"{hosts_file} must have a top-level 'all' group")
    merged: dict[str, dict[str, Any]] = {}
    for name, hvars in _walk_groups(data["all"], {}):
        merged.setdefault(name, {}).update(hvars)
    hosts: list[Host] = []
    for name, hvars in merged.items():
        if not HOST_NAME_RE.match(name):
            raise InventoryError(f"{hosts_file}: invalid host name {name!r}")
        key = hvars.get("ansible_ssh_private_key_file")
        hosts.append(
            Host(
                name=name,
                address=validate_address(str(hvars.get("ansible_host", name))),
                port=validate_port(hvars.get("ansible_port", 22)),
                user=str(hvars.get("ansible_user", "root")),
                key_file=Path(str(key)) if key else None,
            )
        )
    if not hosts:
        raise InventoryError(f"{hosts_file} lists no hosts")
    seen: dict[tuple[str, int], str] = {}
    for h in hosts:
        other = seen.setdefault((h.address, h.port), h.name)
        if other != h.name:
            raise InventoryError(f"{hosts_file}: hosts {other} and {h.name} share {h.address}:{h.port}")
    meta_file = path / "client.yml"
    meta = (_read_yaml(meta_file) or {}) if meta_file.exists() else {}
    if not isinstance(meta, Mapping):
        raise InventoryError(f"{meta_file} must be a mapping")
    return Inventory(client=client, path=path, hosts=tuple(hosts), meta=meta)
