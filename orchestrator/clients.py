"""Client inventories scaffolded from templates, listed, shown and removed.

Everything is validated before anything is written; the folder is rendered into a temporary sibling and
renamed into place, so a failed ``client new`` leaves nothing behind and a forced one never leaves half of
the old and half of the new.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from . import inventory, window
from .collector.tokens import ensure_collector_token
from .errors import InventoryError
from .inventory_schema import CONTACT_RE, KEY_PATH_RE, USER_RE
from .ledger import Ledger
from .paths import project_root
from .settings import Settings
from .tiers import get_tier

SUPPORT_CONTACT = "Sentry SOC, soc@sentry.invalid, +1-555-0100"
# Full-string matches only (re.fullmatch): a '$' anchor would let a trailing newline through.
HOST_SPEC_RE = re.compile(r"(?P<name>[^=]+)=(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<addr>[^:\[\]]+))(?::(?P<port>\d+))?")
TEMPLATE_FILES = {
    "hosts.yml": "hosts.yml.j2",
    "client.yml": "client.yml.j2",
    "group_vars/all.yml": "group_vars_all.yml.j2",
}


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    port: int = 22


@dataclass(frozen=True)
class ClientSpec:
    name: str
    tier: str
    hosts: tuple[HostSpec, ...]
    mgmt_networks: tuple[str, ...]
    window: str = "always"
    user: str = "root"
    key_file: str | None = None
    game_ports_tcp: tuple[int, ...] = ()
    game_ports_udp: tuple[int, ...] = ()
    contacts: tuple[str, ...] = field(default_factory=tuple)


def parse_host(spec: str) -> HostSpec:
    match = HOST_SPEC_RE.fullmatch(spec.strip())
    if not match:
        raise InventoryError(
            f"invalid --host {spec!r}", hint="write NAME=ADDRESS or NAME=ADDRESS:PORT ([IPv6]:PORT for IPv6)"
        )
    name = match["name"].strip()
    if not inventory.HOST_NAME_RE.fullmatch(name):
        raise InventoryError(f"invalid host name {name!r}", hint="use letters, digits, dots, dashes, underscores")
    address = inventory.validate_address(match["v6"] or match["addr"])
    port = inventory.validate_port(match["port"] or 22)
    return HostSpec(name, address, port)


def parse_game_port(spec: str) -> tuple[int | None, int | None]:
    """``7777`` is TCP and UDP; ``7777/tcp`` or ``27015/udp`` one of them."""
    number, _, proto = spec.partition("/")
    try:
        port = int(number)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535 or proto.lower() not in ("", "tcp", "udp"):
        raise InventoryError(f"invalid --game-port {spec!r}", hint="write PORT, PORT/tcp or PORT/udp (1-65535)")
    proto = proto.lower()
    return (port if proto in ("", "tcp") else None, port if proto in ("", "udp") else None)


def parse_network(spec: str) -> str:
    try:
        return str(ipaddress.ip_network(spec, strict=True))
    except ValueError as exc:
        raise InventoryError(
            f"invalid --mgmt-network {spec!r}: {exc}", hint="give a network in CIDR form, e.g. 203.0.113.0/24"
        ) from exc


def build_spec(
    *,
    name: str,
    tier: str,
    hosts: Sequence[str],
    mgmt_networks: Sequence[str],
    window_text: str = "always",
    user: str = "root",
    key_file: str | None = None,
    game_ports: Sequence[str] = (),
    contacts: Sequence[str] = (),
) -> ClientSpec:
    """Validate every input and return the spec; raises InventoryError naming the first bad value."""
    inventory.validate_client_name(name)
    get_tier(tier)
    if not hosts:
        raise InventoryError("a client needs at least one --host", hint="add --host NAME=ADDRESS[:PORT]")
    parsed = [parse_host(h) for h in hosts]
    names = [h.name for h in parsed]
    for n in sorted({n for n in names if names.count(n) > 1}):
        raise InventoryError(f"duplicate host name {n!r}", hint="every --host needs its own name")
    endpoints = [(h.address, h.port) for h in parsed]
    for a, p in sorted({e for e in endpoints if endpoints.count(e) > 1}):
        raise InventoryError(f"two hosts share the address {a}:{p}", hint="every --host needs its own address")
    if not mgmt_networks:
        raise InventoryError(
            "at least one --mgmt-network is needed",
            hint="give the networks Sentry manages hosts from (the firewall admits SSH only from them)",
        )
    nets = tuple(dict.fromkeys(parse_network(n) for n in mgmt_networks))
    win = window.parse(window_text)
    if not isinstance(user, str) or not USER_RE.fullmatch(user):
        raise InventoryError(f"invalid --user {user!r}", hint="use a plain Unix user name")
    if key_file is not None:
        key = Path(key_file).expanduser().resolve()
        if not key.is_file():
            raise InventoryError(f"SSH key {key_file!r} does not exist", hint="pass the private key file with --key")
        if not KEY_PATH_RE.fullmatch(str(key)):
            raise InventoryError(
                f"invalid --key path {str(key)!r}", hint="use a path without spaces, quotes, '%', '$' or newlines"
            )
        key_file = str(key)
    tcp: list[int] = []
    udp: list[int] = []
    for spec in game_ports:
        t, u = parse_game_port(spec)
        tcp += [t] if t and t not in tcp else []
        udp += [u] if u and u not in udp else []
    for contact in contacts:
        if not CONTACT_RE.fullmatch(contact.strip()):
            raise InventoryError(f"invalid --contact {contact!r}", hint='write "Full Name <mail@example.com>"')
    return ClientSpec(
        name=name,
        tier=tier,
        hosts=tuple(parsed),
        mgmt_networks=nets,
        window=win.text,
        user=user,
        key_file=key_file,
        game_ports_tcp=tuple(sorted(tcp)),
        game_ports_udp=tuple(sorted(udp)),
        contacts=tuple(c.strip() for c in contacts),
    )


def yaml_value(value: Any) -> str:
    """A YAML scalar or flow collection for ``value``: JSON is YAML, and json.dumps quotes and escapes every
    string (a quote, a colon, a newline) so no value can end its line and start another key. Unlike Jinja's
    ``tojson`` it keeps '<' and '>' readable."""
    return json.dumps(value, ensure_ascii=False)


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(project_root() / "templates"),
        undefined=jinja2.StrictUndefined,  # a missing variable fails loudly instead of rendering empty
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # YAML, not HTML: every value is validated first and rendered with tojson (a JSON string is a YAML
        # string), never pasted into YAML.
        autoescape=False,  # noqa: S701
    )
    env.filters["yaml"] = yaml_value
    return env


def render(spec: ClientSpec, now: dt.datetime | None = None) -> dict[str, str]:
    env = template_env()
    context: dict[str, Any] = {
        "client": spec,
        "tier": get_tier(spec.tier),
        "created": (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        "support_contact": SUPPORT_CONTACT,
    }
    try:
        return {path: env.get_template(f"inventory/{tpl}").render(context) for path, tpl in TEMPLATE_FILES.items()}
    except jinja2.TemplateError as exc:
        raise InventoryError(f"inventory template failed: {exc}") from exc


def create(settings: Settings, spec: ClientSpec, ledger: Ledger, *, force: bool = False) -> inventory.Inventory:
    target = settings.client_dir(spec.name)
    if target.exists() and not force:
        raise InventoryError(
            f"client {spec.name} already exists at {target}",
            hint="choose another name, or pass --force to rewrite its inventory",
        )
    files = render(spec)
    settings.inventories.mkdir(parents=True, exist_ok=True)
    staging = settings.inventories / f".{spec.name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if target.exists():
            _carry_pins(target, staging, spec)
        # Recorded before the folder goes live: a ledger failure leaves the old inventory untouched.
        ensure_client(ledger, inventory.load_dir(staging, spec.name))
        old = settings.inventories / f".{spec.name}.old"
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    inv = inventory.load(settings.inventories, spec.name)
    ensure_collector_token(settings, inv, ledger)
    return inv


def _carry_pins(old: Path, new: Path, spec: ClientSpec) -> None:
    """On --force, keep the pinned keys of hosts whose address did not change."""
    known = old / "known_hosts"
    if not known.exists():
        return
    names = {inventory.Host(h.name, h.address, h.port).known_hosts_name for h in spec.hosts}
    kept = [line for line in known.read_text().splitlines() if line.split(" ", 1)[0] in names]
    if kept:
        (new / "known_hosts").write_text("".join(f"{line}\n" for line in kept))


def list_clients(settings: Settings) -> list[inventory.Inventory]:
    if not settings.inventories.is_dir():
        return []
    found = []
    for d in sorted(settings.inventories.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and (d / "hosts.yml").exists():
            found.append(inventory.load(settings.inventories, d.name))
    return found


def remove(settings: Settings, name: str, ledger: Ledger) -> Path:
    inv = inventory.load(settings.inventories, name)
    if ledger.client(name) is not None:
        ledger.remove_client(name)
    shutil.rmtree(inv.path)
    return inv.path


def ensure_client(ledger: Ledger, inv: inventory.Inventory) -> None:
    """Make the ledger know this client and exactly the inventory's hosts (a lab client is never 'new'd).

    The inventory says which hosts a client has, the ledger remembers it (and everything done to them): every
    flow that touches a client's hosts calls this first, so the two never drift apart.
    """
    record = ledger.client(inv.client)
    tier = inv.tier or "unknown"
    if record is None:
        ledger.add_client(inv.client, tier, dict(inv.meta))
    elif record.tier != tier:
        # The ledger keeps the old record as history; the live one carries the new tier.
        ledger.remove_client(inv.client)
        ledger.add_client(inv.client, tier, dict(inv.meta))
    ledger.sync_hosts(inv.client, [(h.name, h.address, h.port) for h in inv.hosts])
