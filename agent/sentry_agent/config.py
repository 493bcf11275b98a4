"""Agent configuration (``/etc/sentry/agent.json``): strict JSON validation into a frozen dataclass.

Every problem is reported as one line naming the offending key (``sources[1].path: ...``) so that a bad
config rendered by Ansible fails its ``validate:`` step or the service start with a readable message.
Unknown keys are errors: a misspelt key would otherwise silently fall back to a default.

Keys (defaults in parentheses):

- ``client``, ``tier``, ``host`` (required): non-empty strings, copied into alerts, heartbeats and /healthz.
- ``listen_address`` ("127.0.0.1"), ``listen_port`` (9110; 0 picks a free port, logged at start):
  the health/metrics server; must be a loopback address.
- ``sources`` (required): list of ``{"name": ..., "path": ...}``; rules reference sources by name.
- ``rules_file`` (the release's ``rules/rules.json``), ``rule_overrides`` ({}): per-rule
  ``threshold``/``window_seconds``/``ban_seconds`` overrides, checked against the rules file at load time.
- ``never_ban`` ([]): CIDRs never banned; 127.0.0.0/8 and ::1/128 are always added.
- ``nft_table_family`` ("inet"), ``nft_table`` ("sentry"), ``nft_set_v4`` ("banned_v4"),
  ``nft_set_v6`` ("banned_v6"), ``nft_binary`` ("/usr/sbin/nft"), ``ban_timeout_seconds`` (5).
- ``ban_command_enabled`` (true): false records bans without running nft.
- ``spool_dir`` ("/var/spool/sentry-agent"), ``spool_max_bytes`` (10 MiB, at least 64 KiB).
- ``heartbeat_interval_seconds`` (30; the tiers set 15/30/60), ``poll_interval_seconds`` (0.25).
- ``state_dir`` ("/var/lib/sentry-agent"): tail offsets.
- ``collector_token`` (""): the client's token for Sentry's collector, kept for the shipper; never logged,
  never served on /healthz or /metrics (the config file is root-only on the host).
- ``collector_url`` (""): ``https://ADDR:PORT`` of Sentry's collector; empty disables shipping (the spool
  keeps filling up to its bound). When set, ``collector_cert_sha256`` (64 hex digits: SHA-256 of the
  collector certificate's DER bytes, the pin) and ``collector_token`` are required too.
- ``collector_timeout_seconds`` (10): bound of every network wait of the shipper (connect, TLS, request).
- ``ship_interval_seconds`` (2): the longest a record waits in the spool before it is sent, when the
  collector is reachable (a full batch goes at once).
- ``quarantine_max_bytes`` (1 MiB): bound of ``state_dir/quarantine.jsonl`` (records the collector rejected
  3 times).
- ``pack_public_key`` (""): 64 lowercase hex digits, the raw Ed25519 public key of Sentry's release signing key;
  detection packs must be signed with it. Empty disables pack polling; set, it needs ``collector_url`` (packs
  come over the same pinned connection, with the same token and ``collector_timeout_seconds`` bound).
- ``pack_poll_seconds`` (10; 1 to 3600; the tiers set 30/10/5): how often the agent asks for its assignment.
- ``pack_dir`` (``state_dir``/packs): the active pack and the last-known-good, kept across restarts.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ALWAYS_NEVER_BAN",
    "AgentConfig",
    "ConfigError",
    "IPNetwork",
    "RuleOverride",
    "Source",
    "load_config",
    "parse_config",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALWAYS_NEVER_BAN: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)

MIB = 1024 * 1024
_MIN_SPOOL_BYTES = 64 * 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
# nft identifiers end up as argv words; the strict charset keeps them from ever being parsed as syntax.
_NFT_IDENT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}\Z")
_NFT_FAMILIES = ("inet", "ip", "ip6")
_OVERRIDE_KEYS = ("threshold", "window_seconds", "ban_seconds")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
# https://HOST:PORT with an optional trailing slash; HOST is a name, an IPv4 literal or a bracketed IPv6 one.
_URL_RE = re.compile(r"^https://(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):(?P<port>[0-9]{1,5})/?\Z")


class ConfigError(ValueError):
    """The configuration is invalid; the message is one line naming the key."""


@dataclass(frozen=True)
class Source:
    name: str
    path: Path


@dataclass(frozen=True)
class RuleOverride:
    threshold: int | None = None
    window_seconds: int | None = None
    ban_seconds: int | None = None


@dataclass(frozen=True)
class AgentConfig:
    client: str
    tier: str
    host: str
    sources: tuple[Source, ...]
    listen_address: str = "127.0.0.1"
    listen_port: int = 9110
    rules_file: Path | None = None
    rule_overrides: Mapping[str, RuleOverride] = field(default_factory=dict)
    never_ban: tuple[IPNetwork, ...] = ALWAYS_NEVER_BAN
    nft_table_family: str = "inet"
    nft_table: str = "sentry"
    nft_set_v4: str = "banned_v4"
    nft_set_v6: str = "banned_v6"
    nft_binary: Path = Path("/usr/sbin/nft")
    ban_command_enabled: bool = True
    ban_timeout_seconds: float = 5.0
    spool_dir: Path = Path("/var/spool/sentry-agent")
    spool_max_bytes: int = 10 * MIB
    heartbeat_interval_seconds: float = 30.0
    poll_interval_seconds: float = 0.25
    state_dir: Path = Path("/var/lib/sentry-agent")
    collector_token: str = field(default="", repr=False)  # repr=False: a logged config never shows it
    collector_url: str = ""
    collector_cert_sha256: str = ""
    collector_timeout_seconds: float = 10.0
    ship_interval_seconds: float = 2.0
    quarantine_max_bytes: int = MIB
    pack_public_key: str = ""
    pack_poll_seconds: float = 10.0
    pack_dir: Path = Path()  # Path() means state_dir / "packs" (set after init)

    def __post_init__(self) -> None:
        if self.pack_dir == Path():
            object.__setattr__(self, "pack_dir", self.state_dir / "packs")

    @property
    def packs_enabled(self) -> bool:
        return bool(self.pack_public_key) and self.shipping_enabled

    @property
    def shipping_enabled(self) -> bool:
        return bool(self.collector_url)

    @property
    def collector_address(self) -> tuple[str, int]:
        """(host, port) of collector_url (validated at load time)."""
        m = _URL_RE.match(self.collector_url)
        assert m is not None, "collector_url is validated by parse_config"
        return m["host"].strip("[]"), int(m["port"])


def load_config(path: Path) -> AgentConfig:
    """Read and validate the config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    return parse_config(data)


def parse_config(data: object) -> AgentConfig:
    """Validate already-decoded JSON."""
    if not isinstance(data, dict):
        raise ConfigError("config must be a JSON object")
    known = set(AgentConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (known keys: {', '.join(sorted(known))})")

    never_ban = list(ALWAYS_NEVER_BAN)
    for net in _cidrs(data, "never_ban"):
        if net not in never_ban:
            never_ban.append(net)

    return AgentConfig(
        client=_text(data, "client"),
        tier=_text(data, "tier"),
        host=_text(data, "host"),
        sources=_sources(data),
        listen_address=_listen_address(data),
        listen_port=_int(data, "listen_port", 9110, 0, 65535),
        rules_file=_opt_path(data, "rules_file"),
        rule_overrides=_overrides(data),
        never_ban=tuple(never_ban),
        nft_table_family=_choice(data, "nft_table_family", "inet", _NFT_FAMILIES),
        nft_table=_nft_ident(data, "nft_table", "sentry"),
        nft_set_v4=_nft_ident(data, "nft_set_v4", "banned_v4"),
        nft_set_v6=_nft_ident(data, "nft_set_v6", "banned_v6"),
        nft_binary=_path(data, "nft_binary", Path("/usr/sbin/nft")),
        ban_command_enabled=_bool(data, "ban_command_enabled", True),
        ban_timeout_seconds=_number(data, "ban_timeout_seconds", 5.0, 0.1, 120.0),
        spool_dir=_path(data, "spool_dir", Path("/var/spool/sentry-agent")),
        spool_max_bytes=_int(data, "spool_max_bytes", 10 * MIB, _MIN_SPOOL_BYTES, 1 << 40),
        heartbeat_interval_seconds=_number(data, "heartbeat_interval_seconds", 30.0, 1.0, 86400.0),
        poll_interval_seconds=_number(data, "poll_interval_seconds", 0.25, 0.01, 10.0),
        state_dir=_path(data, "state_dir", Path("/var/lib/sentry-agent")),
        pack_dir=_path(data, "pack_dir", Path()),
        collector_token=_secret(data, "collector_token"),
        **_collector(data),
    )


def _collector(data: Mapping[str, Any]) -> dict[str, Any]:
    url = data.get("collector_url", "")
    if not isinstance(url, str):
        raise ConfigError(f"collector_url: must be a string, got {_type_name(url)} {url!r}")
    m = _URL_RE.match(url)
    if url and (m is None or not 1 <= int(m["port"]) <= 65535):
        raise ConfigError(f"collector_url: must look like https://ADDR:PORT, got {url!r}")
    pin = data.get("collector_cert_sha256", "")
    if not isinstance(pin, str) or (pin and not _SHA256_RE.match(pin)):
        raise ConfigError("collector_cert_sha256: must be 64 lowercase hex digits (sha256 of the DER certificate)")
    if url and not pin:
        raise ConfigError("collector_cert_sha256: required when collector_url is set (the certificate pin)")
    if url and not data.get("collector_token"):
        raise ConfigError("collector_token: required when collector_url is set")
    key = data.get("pack_public_key", "")
    if not isinstance(key, str) or (key and not _SHA256_RE.match(key)):
        raise ConfigError("pack_public_key: must be 64 lowercase hex digits (the raw Ed25519 public key) or empty")
    if key and not url:
        raise ConfigError("pack_public_key: needs collector_url (packs come from Sentry's collector)")
    return {
        "collector_url": url,
        "collector_cert_sha256": pin,
        "collector_timeout_seconds": _number(data, "collector_timeout_seconds", 10.0, 0.5, 120.0),
        "ship_interval_seconds": _number(data, "ship_interval_seconds", 2.0, 0.05, 3600.0),
        "quarantine_max_bytes": _int(data, "quarantine_max_bytes", MIB, 4096, 1 << 30),
        "pack_public_key": key,
        "pack_poll_seconds": _number(data, "pack_poll_seconds", 10.0, 1.0, 3600.0),
    }


def _secret(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"{key}: must be a string")  # never echo the value itself
    return value


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _text(data: Mapping[str, Any], key: str) -> str:
    if key not in data:
        raise ConfigError(f"{key}: required key is missing")
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: must be a non-empty string, got {_type_name(value)} {value!r}")
    if not value.isprintable():
        raise ConfigError(f"{key}: must not contain control characters")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false, got {_type_name(value)} {value!r}")
    return value


def _int(data: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = data.get(key, default)
    # bool is an int subclass; `true` for a port is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: must be an integer, got {_type_name(value)} {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{key}: must be between {low} and {high}, got {value}")
    return value


def _number(data: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: must be a number, got {_type_name(value)} {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{key}: must be between {low:g} and {high:g}, got {value}")
    return float(value)


def _choice(data: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _nft_ident(data: Mapping[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not _NFT_IDENT_RE.match(value):
        raise ConfigError(f"{key}: must be an nftables identifier (letters, digits, _), got {value!r}")
    return value


def _check_path(key: str, value: object) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: must be a path string, got {_type_name(value)} {value!r}")
    path = Path(value)
    if not path.is_absolute():
        raise ConfigError(f"{key}: must be an absolute path, got {value!r}")
    if "\0" in value:
        raise ConfigError(f"{key}: must not contain NUL")
    return path


def _path(data: Mapping[str, Any], key: str, default: Path) -> Path:
    return _check_path(key, data[key]) if key in data else default


def _opt_path(data: Mapping[str, Any], key: str) -> Path | None:
    if data.get(key) is None:
        return None
    return _check_path(key, data[key])


def _listen_address(data: Mapping[str, Any]) -> str:
    value = data.get("listen_address", "127.0.0.1")
    if not isinstance(value, str):
        raise ConfigError(f"listen_address: must be a string, got {_type_name(value)} {value!r}")
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"listen_address: must be an IP address literal, got {value!r}") from None
    if not addr.is_loopback:
        raise ConfigError(f"listen_address: must be a loopback address (127.0.0.0/8 or ::1), got {value!r}")
    return value


def _sources(data: Mapping[str, Any]) -> tuple[Source, ...]:
    if "sources" not in data:
        raise ConfigError("sources: required key is missing")
    raw = data["sources"]
    if not isinstance(raw, list):
        raise ConfigError(f"sources: must be a list, got {_type_name(raw)}")
    sources: list[Source] = []
    for i, item in enumerate(raw):
        where = f"sources[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be an object with name and path")
        extra = sorted(set(item) - {"name", "path"})
        if extra:
            raise ConfigError(f"{where}.{extra[0]}: unknown key (known keys: name, path)")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigError(f"{where}.name: must match {_NAME_RE.pattern}, got {name!r}")
        if "path" not in item:
            raise ConfigError(f"{where}.path: required key is missing")
        path = _check_path(f"{where}.path", item["path"])
        for other in sources:
            if other.name == name:
                raise ConfigError(f"{where}.name: duplicate source name {name!r}")
            if other.path == path:
                raise ConfigError(f"{where}.path: {path} is already source {other.name!r}")
        sources.append(Source(name=name, path=path))
    return tuple(sources)


def _cidrs(data: Mapping[str, Any], key: str) -> list[IPNetwork]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        raise ConfigError(f"{key}: must be a list of CIDRs, got {_type_name(raw)}")
    nets: list[IPNetwork] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise ConfigError(f"{key}[{i}]: must be a CIDR string, got {_type_name(item)} {item!r}")
        try:
            # strict: "10.1.2.3/8" is almost certainly a typo, and guessing which network was meant could
            # leave the management network bannable.
            nets.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ConfigError(f"{key}[{i}]: invalid CIDR {item!r}: {exc}") from None
    return nets


def _overrides(data: Mapping[str, Any]) -> dict[str, RuleOverride]:
    raw = data.get("rule_overrides", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"rule_overrides: must be an object keyed by rule id, got {_type_name(raw)}")
    result: dict[str, RuleOverride] = {}
    for rule_id, item in raw.items():
        where = f"rule_overrides.{rule_id}"
        if not isinstance(item, dict) or not item:
            raise ConfigError(f"{where}: must be a non-empty object with {', '.join(_OVERRIDE_KEYS)}")
        extra = sorted(set(item) - set(_OVERRIDE_KEYS))
        if extra:
            raise ConfigError(f"{where}.{extra[0]}: unknown key (known keys: {', '.join(_OVERRIDE_KEYS)})")
        values: dict[str, int] = {}
        for key, value in item.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{where}.{key}: must be a positive integer, got {value!r}")
            values[key] = value
        result[rule_id] = RuleOverride(**values)
    return result
