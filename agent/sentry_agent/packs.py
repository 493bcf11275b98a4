"""Detection packs: checking one that came from the collector, before anything of it is used.

A pack is one file ``pack.json`` (canonical JSON) signed with Sentry's release signing key (Ed25519)::

    {"format": "sentry-pack/1", "version": "2026.12.7", "created_at": "2026-12-07T19:00:00Z",
     "rules": {...} | null,
     "blocklist": [{"net": "203.0.113.0/24", "expires_at": "2026-12-14T00:00:00Z", "comment": "botnet X"}]}

The agent trusts neither the collector nor the network: :func:`check_pack` takes the bytes, the digest of the
host's assignment and the signature, and refuses (:class:`PackError`, one line) unless

1. sha256(bytes) is the assignment's digest;
2. the signature verifies with ``pack_public_key`` (:mod:`sentry_agent.ed25519`);
3. the content is a valid pack: format, a version like ``2026.12.7`` equal to the one assigned, rules that
   :func:`~sentry_agent.rules.parse_rules` accepts (with the config's ``rule_overrides`` for the rules the pack
   has: a pack that leaves out a tuned rule is not refused for it), at most 10000 blocklist entries, each a
   strict network with an RFC 3339 UTC expiry, none overlapping ``never_ban`` or loopback (one such entry
   refuses the whole pack: a pack must never lock out a management network).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import ed25519
from .config import IPNetwork, RuleOverride
from .rules import RulesError, RuleSet, parse_rules

__all__ = ["MAX_BLOCKLIST", "PACK_FORMAT", "BlockEntry", "Pack", "PackError", "check_pack", "parse_pack"]

PACK_FORMAT = "sentry-pack/1"
MAX_BLOCKLIST = 10_000
MAX_COMMENT = 200
_TOP_KEYS = ("format", "version", "created_at", "rules", "blocklist")
_ENTRY_KEYS = ("net", "expires_at", "comment")
VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]{1,40})?\Z")
_TIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")


class PackError(ValueError):
    """The pack is refused; the message is one line saying why (it goes into ``pack_error``)."""


@dataclass(frozen=True)
class BlockEntry:
    net: IPNetwork
    expires_at: float  # epoch seconds
    comment: str | None = None


@dataclass(frozen=True)
class Pack:
    version: str
    digest: str
    created_at: str
    rules: RuleSet | None  # None: the release's own rules stay in effect
    blocklist: tuple[BlockEntry, ...]
    content: bytes  # the exact signed bytes (kept as last-known-good and checked again after a restart)
    signature: bytes
    rules_digest: str | None = None  # sha256 of the rules object (canonical JSON): heartbeats' rules_digest


def check_pack(
    content: bytes,
    signature: bytes,
    *,
    digest: str,
    version: str,
    public_key: str,
    overrides: Mapping[str, RuleOverride] | None = None,
    never_ban: Iterable[IPNetwork] = (),
) -> Pack:
    """Digest, signature, then content; a :class:`Pack` or PackError. ``public_key``: 64 hex digits."""
    got = hashlib.sha256(content).hexdigest()
    if not hmac.compare_digest(got, digest):
        raise PackError(f"pack {version} refused: sha256 {got[:16]}... is not the assigned digest {digest[:16]}...")
    try:
        key = bytes.fromhex(public_key)
    except ValueError:
        raise PackError("pack_public_key is not hex") from None
    if not ed25519.verify(key, content, signature):
        raise PackError(f"pack {version} refused: signature does not verify")
    pack = parse_pack(content, signature, digest=digest, overrides=overrides, never_ban=never_ban)
    if pack.version != version:
        raise PackError(f"pack {version} refused: its content says version {pack.version}")
    return pack


def parse_pack(
    content: bytes,
    signature: bytes = b"",
    *,
    digest: str = "",
    overrides: Mapping[str, RuleOverride] | None = None,
    never_ban: Iterable[IPNetwork] = (),
) -> Pack:
    """Validate the content of an (already authenticated) pack."""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PackError(f"pack refused: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PackError("pack refused: not a JSON object")
    version = data.get("version")
    name = f"pack {version}" if isinstance(version, str) and VERSION_RE.match(version) else "pack"
    extra = sorted(set(data) - set(_TOP_KEYS))
    if extra:
        raise PackError(f"{name} refused: unknown key {extra[0]!r}")
    if data.get("format") != PACK_FORMAT:
        raise PackError(f"{name} refused: format must be {PACK_FORMAT!r}, got {data.get('format')!r}")
    if name == "pack":
        raise PackError(f"pack refused: version must look like 2026.12.7, got {version!r}")
    assert isinstance(version, str)
    created = data.get("created_at")
    if not isinstance(created, str) or _epoch(created) is None:
        raise PackError(f"{name} refused: created_at must be RFC 3339 UTC like 2026-12-07T19:00:00Z")
    rules = _rules(name, data.get("rules"), overrides)
    blocklist = _blocklist(name, data.get("blocklist"), tuple(never_ban))
    if rules is None and not blocklist:
        raise PackError(f"{name} refused: it has neither rules nor blocklist entries")
    raw_rules = data.get("rules")
    rules_digest = None
    if raw_rules is not None:
        canonical = json.dumps(raw_rules, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        rules_digest = hashlib.sha256(canonical.encode()).hexdigest()
    return Pack(version, digest, created, rules, blocklist, content, signature, rules_digest)


def _epoch(text: str) -> float | None:
    if not _TIME_RE.match(text):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _rules(name: str, raw: Any, overrides: Mapping[str, RuleOverride] | None) -> RuleSet | None:
    if raw is None:
        return None
    ids = {r.get("id") for r in raw.get("rules", []) if isinstance(r, dict)} if isinstance(raw, dict) else set()
    # Only the overrides of rules the pack has: tuning for a rule the pack leaves out must not refuse it.
    mine = {k: v for k, v in (overrides or {}).items() if k in ids}
    try:
        return parse_rules(raw, mine)
    except RulesError as exc:
        raise PackError(f"{name} refused: rules: {exc}") from None


def _blocklist(name: str, raw: Any, never_ban: tuple[IPNetwork, ...]) -> tuple[BlockEntry, ...]:
    if not isinstance(raw, list):
        raise PackError(f"{name} refused: blocklist must be a list")
    if len(raw) > MAX_BLOCKLIST:
        raise PackError(f"{name} refused: blocklist has {len(raw)} entries (at most {MAX_BLOCKLIST})")
    entries: dict[IPNetwork, BlockEntry] = {}
    for i, item in enumerate(raw):
        where = f"{name} refused: blocklist[{i}]"
        if not isinstance(item, dict):
            raise PackError(f"{where}: must be an object with net and expires_at")
        extra = sorted(set(item) - set(_ENTRY_KEYS))
        if extra:
            raise PackError(f"{where}: unknown key {extra[0]!r}")
        try:
            net = ipaddress.ip_network(item.get("net"), strict=True)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise PackError(
                f"{where}: net must be an address or network in strict form, got {item.get('net')!r}"
            ) from None
        expires = item.get("expires_at")
        when = _epoch(expires) if isinstance(expires, str) else None
        if when is None:
            raise PackError(f"{where}: expires_at must be RFC 3339 UTC like 2026-12-14T00:00:00Z")
        comment = item.get("comment")
        if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
            raise PackError(f"{where}: comment must be a string of at most {MAX_COMMENT} characters")
        for protected in never_ban:
            if net.version == protected.version and net.overlaps(protected):
                raise PackError(f"{where}: {net} overlaps never_ban {protected}")
        if net.version == 6 and net.overlaps(ipaddress.ip_network("::ffff:0:0/96")):
            raise PackError(f"{where}: {net} overlaps the IPv4-mapped range (ban the IPv4 network instead)")
        seen = entries.get(net)
        if seen is None or seen.expires_at < when:  # a net listed twice: the later expiry wins
            entries[net] = BlockEntry(net, when, comment)
    return tuple(entries.values())
