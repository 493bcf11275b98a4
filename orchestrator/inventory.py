"""Client inventories: the folder ``inventories/<client>/`` loaded into typed records.

Hosts are resolved by ansible-core itself (its InventoryManager with the YAML plugin, and its variable
precedence over hosts.yml, group_vars/ and host_vars/), so paramiko, Fabric, testinfra and OpenSSH connect
exactly where Ansible does. Every file is first checked by :mod:`.inventory_schema` (shapes, the allowlist of
connection variables, no templates), and what Ansible resolves is validated again.

Layout (the lab writes the same shape as ``client new`` will):
  hosts.yml            Ansible YAML inventory; every host has ansible_host, optionally ansible_port
  known_hosts          the pinned host keys; every SSH client checks against it strictly
  client.yml           client facts: name, tier, window, contacts
  group_vars/all.yml   the stack's inventory-level variables (sentry_*)
"""

from __future__ import annotations

import threading
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


def _walk(file: Path, name: str, group: schema.GroupModel, chain: tuple[str, ...]) -> Iterable[str]:
    """Every host of ``group`` and its children, in file order, once each group's and host's variables pass."""
    if name != "all" and not schema.GROUP_NAME_RE.fullmatch(name):
        raise InventoryError(f"{file}: invalid group name {name!r}", hint="use letters, digits and underscores")
    chain = (*chain, name)
    where = ".".join(chain)
    schema.check_vars(file, f"{where}.vars", group.vars or {})
    for host, hvars in (group.hosts or {}).items():
        if not schema.HOST_NAME_RE.fullmatch(host):
            raise InventoryError(f"{file}: invalid host name {host!r}", hint="use letters, digits, dots, dashes")
        schema.check_vars(file, f"{where}.hosts.{host}", hvars or {})
        yield host
    for child, sub in (group.children or {}).items():
        yield from _walk(file, child, sub or schema.GroupModel(), chain)


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


def _check_vars_files(root: Path) -> None:
    for files in _vars_files(root).values():
        for f in files:
            data = _read_yaml(f)
            if data is None:
                continue
            if not isinstance(data, Mapping):
                raise InventoryError(f"{f} must be a mapping of variables (name: value), not {type(data).__name__}")
            schema.check_vars(f, "", data)


# ansible-core's plugin loaders and inventory keep process-wide state and are not written for threads; clients
# are loaded on several threads at once (the demo provisions two), so one resolution runs at a time.
_ANSIBLE = threading.Lock()


def _resolve(hosts_file: Path) -> dict[str, dict[str, Any]]:
    """Each host's connection variables (of :data:`~.inventory_schema.CONNECTION_VARS`) as ansible-core resolves
    them from ``hosts_file`` and the group_vars/ and host_vars/ beside it; values already checked by the schema."""
    # Imported here, not at the top: ansible-core takes a while to import and most commands never load an inventory.
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader
    from ansible.vars.manager import VariableManager

    class YamlOnly(InventoryManager):  # type: ignore[misc]  # ansible-core ships no type information
        """hosts.yml is YAML: the other enabled plugins (script runs an executable source, auto loads any
        plugin a file names) have no business reading a client's inventory."""

        def _fetch_inventory_plugins(self) -> list[Any]:
            return [inventory_loader.get("yaml")]

    with _ANSIBLE:
        try:
            loader = DataLoader()
            # Play-adjacent group_vars/ would come from the current folder: make it the inventory's own.
            loader.set_basedir(str(hosts_file.parent))
            manager = YamlOnly(loader=loader, sources=[str(hosts_file)])
            variables = VariableManager(loader=loader, inventory=manager)
            resolved = {}
            for host in manager.get_hosts():
                found = variables.get_vars(host=host, include_hostvars=False)
                resolved[str(host.name)] = {k: _plain(found[k]) for k in schema.CONNECTION_VARS if k in found}
        except AnsibleError as exc:
            message = " ".join(str(exc).split())
            raise InventoryError(f"{hosts_file}: ansible-core cannot read it: {message[:300]}") from None
    return resolved


def _plain(value: Any) -> Any:
    """A value without ansible-core's data tags (its str and int subclasses), so records hold plain types."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    return value


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
    names = list(dict.fromkeys(_walk(hosts_file, "all", data.all, ())))
    _check_vars_files(path / "group_vars")
    _check_vars_files(path / "host_vars")
    if not names:
        raise InventoryError(f"{hosts_file} lists no hosts")
    resolved = _resolve(hosts_file)
    if set(resolved) != set(names):
        raise InventoryError(
            f"{hosts_file}: ansible-core reads the hosts {sorted(resolved)}, the file lists {sorted(names)}",
            hint="list each host by its plain name under 'hosts:' (no ranges or patterns)",
        )
    hosts: list[Host] = []
    for name in names:  # the file's order; the values as Ansible resolves them, checked once more
        hvars = resolved[name]
        key = hvars.get("ansible_ssh_private_key_file")
        hosts.append(
            Host(
                name=name,
                address=validate_address(hvars.get("ansible_host", name)),
                port=validate_port(hvars.get("ansible_port", 22)),
                user=schema.validate_user(hvars.get("ansible_user", "root")),
                key_file=Path(schema.validate_key_path(key)) if key else None,
            )
        )
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
        schema.ClientFileModel, meta_file, raw, "client.yml holds client, tier, window, support_hours, contacts, paging"
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
    try:
        schema.validate_paging(model.paging or {})
    except InventoryError as exc:
        raise InventoryError(f"{meta_file}: {exc.message}", hint=exc.hint) from None
    # Keys the file leaves out stay out: the ledger records what the file says.
    return {k: v for k, v in raw.items()} if isinstance(raw, Mapping) else {}
