"""Client inventories: the folder ``inventories/<client>/`` loaded into typed records.

Layout (the lab writes the same shape as ``client new`` will):
  hosts.yml            Ansible YAML inventory; every host has ansible_host, optionally ansible_port
  known_hosts          the pinned host keys; every SSH client checks against it strictly
  client.yml           client facts: name, tier, window, contacts
  group_vars/all.yml   the stack's inventory-level variables (sentry_*)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import inventory_schema as schema
from .errors import InventoryError
from .inventory_schema import CLIENT_NAME_RE, HOST_NAME_RE, validate_address, validate_client_name, validate_port

# The validators live in inventory_schema; these names stay importable from here.
__all__ = [
    "CLIENT_NAME_RE",
    "HOST_NAME_RE",
    "Host",
    "Inventory",
    "load",
    "load_dir",
    "validate_address",
    "validate_client_name",
    "validate_port",
]


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


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path} cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise InventoryError(
            f"{path} is not valid YAML: {exc}".splitlines()[0],
            hint="plain YAML only (no !vault or other tags: secrets go in 'sentryctl client secret set')",
        ) from exc


@dataclass
class _Seen:
    """One host as the inventory file places it: its groups (outermost first) and its variables."""

    groups: list[str] = field(default_factory=list)
    group_vars: dict[str, Any] = field(default_factory=dict)
    host_vars: dict[str, Any] = field(default_factory=dict)


def _walk(
    file: Path, name: str, group: schema.GroupModel, inherited: Mapping[str, Any], chain: tuple[str, ...]
) -> Iterable[tuple[str, _Seen]]:
    if name != "all" and not schema.GROUP_NAME_RE.fullmatch(name):
        raise InventoryError(f"{file}: invalid group name {name!r}", hint="use letters, digits and underscores")
    chain = (*chain, name)
    where = ".".join(chain)
    own = schema.check_vars(file, f"{where}.vars", group.vars or {})
    merged = {**inherited, **own}
    for host, hvars in (group.hosts or {}).items():
        if not schema.HOST_NAME_RE.fullmatch(host):
            raise InventoryError(f"{file}: invalid host name {host!r}", hint="use letters, digits, dots, dashes")
        checked = schema.check_vars(file, f"{where}.hosts.{host}", hvars or {})
        yield host, _Seen(list(chain), dict(merged), checked)
    for child, sub in (group.children or {}).items():
        yield from _walk(file, child, sub or schema.GroupModel(), merged, chain)


def _vars_files(root: Path) -> dict[str, list[Path]]:
    """Every file under ``group_vars/`` or ``host_vars/``, by the group or host it belongs to. Ansible reads
    ``NAME``, ``NAME.yml``/``.yaml``/``.json`` and every file in a folder ``NAME/``; all of them are checked."""
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files = sorted(p for p in entry.rglob("*") if p.is_file() and not p.name.startswith("."))
            found.setdefault(entry.name, []).extend(files)
        else:
            stem = entry.name.rsplit(".", 1)[0] if entry.suffix in (".yml", ".yaml", ".json") else entry.name
            found.setdefault(stem, []).append(entry)
    return found


def _load_vars_files(root: Path) -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = {}
    for owner, files in _vars_files(root).items():
        for f in files:
            data = _read_yaml(f)
            if data is None:
                continue
            if not isinstance(data, Mapping):
                raise InventoryError(f"{f} must be a mapping of variables (name: value), not {type(data).__name__}")
            loaded.setdefault(owner, {}).update(schema.check_vars(f, "", data))
    return loaded


def load(inventories: Path, client: str) -> Inventory:
    validate_client_name(client)
    return load_dir(inventories / client, client)


def load_dir(path: Path, client: str) -> Inventory:
    """Load the inventory in ``path`` as client ``client`` (the folder may be a staging copy).

    Every file Ansible reads (hosts.yml, group_vars/, host_vars/) and every file sentryctl reads (client.yml,
    known_hosts) is checked here, before anything connects anywhere: see :mod:`.inventory_schema`."""
    hosts_file = path / "hosts.yml"
    if not hosts_file.exists():
        raise InventoryError(
            f"no inventory for client {client!r} at {path}",
            hint="create it with 'sentryctl client new' (or 'sentryctl lab up' for the lab)",
        )
    raw = _read_yaml(hosts_file)
    if not isinstance(raw, Mapping) or "all" not in raw:
        raise InventoryError(f"{hosts_file} must have a top-level 'all' group", hint="put every group under all")
    data: schema.HostsFileModel = schema.parse_shape(
        schema.HostsFileModel, hosts_file, raw, "each group holds 'hosts:', 'vars:' and 'children:' mappings"
    )
    seen: dict[str, _Seen] = {}
    for name, where in _walk(hosts_file, "all", data.all, {}, ()):
        entry = seen.setdefault(name, _Seen())
        entry.groups += [g for g in where.groups if g not in entry.groups]
        entry.group_vars.update(where.group_vars)
        entry.host_vars.update(where.host_vars)
    group_files = _load_vars_files(path / "group_vars")
    host_files = _load_vars_files(path / "host_vars")
    hosts: list[Host] = []
    for name, entry in seen.items():
        # Ansible's order: inventory group vars < group_vars/all < group_vars/<group> < inventory host vars
        # < host_vars/<host>; paramiko and OpenSSH must reach the host the way Ansible does.
        hvars = dict(entry.group_vars)
        for group in entry.groups:
            hvars.update(group_files.get(group, {}))
        hvars.update(entry.host_vars)
        hvars.update(host_files.get(name, {}))
        key = hvars.get("ansible_ssh_private_key_file")
        hosts.append(
            Host(
                name=name,
                address=validate_address(hvars.get("ansible_host", name)),
                port=validate_port(hvars.get("ansible_port", 22)),
                user=schema.validate_user(hvars.get("ansible_user", "root")),
                key_file=Path(str(key)) if key else None,
            )
        )
    if not hosts:
        raise InventoryError(f"{hosts_file} lists no hosts")
    endpoints: dict[tuple[str, int], str] = {}
    for h in hosts:
        other = endpoints.setdefault((h.address, h.port), h.name)
        if other != h.name:
            raise InventoryError(f"{hosts_file}: hosts {other} and {h.name} share {h.address}:{h.port}")
    meta = _load_meta(path / "client.yml", client)
    inv = Inventory(client=client, path=path, hosts=tuple(hosts), meta=meta)
    if inv.known_hosts.exists():
        schema.check_known_hosts(inv.known_hosts, client)
    return inv


def _load_meta(meta_file: Path, client: str) -> dict[str, Any]:
    if not meta_file.exists():
        raise InventoryError(
            f"{meta_file} is missing", hint="every client inventory has a client.yml with client and tier"
        )
    raw = _read_yaml(meta_file)
    model: schema.ClientFileModel = schema.parse_shape(
        schema.ClientFileModel, meta_file, raw, "client.yml holds client, tier, window, support_hours, contacts"
    )
    if model.client != client:
        raise InventoryError(
            f"{meta_file}: client is {model.client!r} but the folder is {client!r}", hint="make them agree"
        )
    from .tiers import get_tier

    try:
        get_tier(model.tier)
    except InventoryError as exc:
        raise InventoryError(f"{meta_file}: tier: {exc.message}", hint=exc.hint) from None
    for contact in model.contacts or []:
        try:
            schema.validate_contact(contact)
        except InventoryError as exc:
            raise InventoryError(f"{meta_file}: contacts: {exc.message}", hint=exc.hint) from None
    # Keys the file leaves out stay out: the ledger records what the file says.
    return {k: v for k, v in raw.items()} if isinstance(raw, Mapping) else {}
