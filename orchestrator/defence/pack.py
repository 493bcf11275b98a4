"""The defence pack format (``sentry-pack/1``): one canonical JSON file, its digest, and the typed view of it.

A pack is the file ``pack.json``::

    {"format": "sentry-pack/1", "version": "2026.12.7", "created_at": "2026-12-07T19:00:00Z",
     "rules": {...} | null,
     "blocklist": [{"net": "203.0.113.0/24", "expires_at": "2026-12-14T00:00:00Z", "comment": "botnet X"}]}

``rules`` is exactly what the agent's ``parse_rules`` accepts (null: the release's own rules stay); ``blocklist``
the networks the agent adds to its ban sets until they expire. The bytes are canonical (sorted keys, no spaces,
UTF-8), so the same pack is always the same bytes: its digest is the sha256 of them, its signature an ed25519
signature over them with the release signing key. Nothing here checks the content: :mod:`.validate` does.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import DefenceError

FORMAT = "sentry-pack/1"
PACK_FILE = "pack.json"
SIGNATURE_FILE = "pack.json.sig"
KEYS = ("blocklist", "created_at", "format", "rules", "version")
ENTRY_KEYS = ("comment", "expires_at", "net")
# What an agent reads and the collector serves in one response: a full blocklist (10000 entries) is about 1 MiB.
MAX_PACK_BYTES = 2 * 1024 * 1024


def canonical_bytes(obj: Mapping[str, Any]) -> bytes:
    """The pack's one spelling as bytes (the contract's: sorted keys, no spaces, UTF-8 kept as is)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_stamp(value: _dt.datetime) -> str:
    """RFC 3339 UTC to the second, with ``Z``: how every time in a pack is written."""
    return value.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(value: object, where: str) -> _dt.datetime:
    """An RFC 3339 time with a zone (``Z`` or an offset), as an aware UTC datetime."""
    if not isinstance(value, str):
        raise DefenceError(f"{where}: must be an RFC 3339 time such as 2026-12-14T00:00:00Z, got {value!r}")
    try:
        parsed = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise DefenceError(f"{where}: {value!r} is not an RFC 3339 time (e.g. 2026-12-14T00:00:00Z)") from None
    if parsed.tzinfo is None:
        raise DefenceError(f"{where}: {value!r} has no time zone (end it with Z)")
    return parsed.astimezone(_dt.UTC)


@dataclass(frozen=True)
class BlocklistEntry:
    net: str
    expires_at: _dt.datetime
    comment: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"net": self.net, "expires_at": utc_stamp(self.expires_at), "comment": self.comment}


@dataclass(frozen=True)
class Pack:
    """A pack as built (or read back): its content, digest and who signed it."""

    version: str
    digest: str
    created_at: _dt.datetime
    rules: dict[str, Any] | None
    blocklist: tuple[BlocklistEntry, ...]
    rules_version: str | None
    rule_count: int
    blocklist_count: int
    signed_by: str | None

    def to_json(self, *, content: bool = False) -> dict[str, Any]:
        """The pack's summary for ``--json`` (with ``content``: its rules and blocklist too)."""
        out: dict[str, Any] = {
            "version": self.version,
            "digest": self.digest,
            "created_at": utc_stamp(self.created_at),
            "rules_version": self.rules_version,
            "rule_count": self.rule_count,
            "blocklist_count": self.blocklist_count,
            "signed_by": self.signed_by,
        }
        if content:
            out["rules"] = self.rules
            out["blocklist"] = [e.to_json() for e in self.blocklist]
        return out


def pack_object(
    version: str, created_at: _dt.datetime, rules: Mapping[str, Any] | None, blocklist: tuple[BlocklistEntry, ...]
) -> dict[str, Any]:
    """The JSON object of a pack, ready for :func:`canonical_bytes`."""
    return {
        "format": FORMAT,
        "version": version,
        "created_at": utc_stamp(created_at),
        "rules": None if rules is None else dict(rules),
        "blocklist": [e.to_json() for e in blocklist],
    }


def read_pack(data: bytes, *, signed_by: str | None = None) -> Pack:
    """The typed view of ``pack.json`` bytes already trusted (signature checked, or the ledger's own copy); a
    shape that is not the format's is a :class:`DefenceError`, never a crash."""
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise DefenceError(f"{PACK_FILE} is not JSON: {exc}") from None
    if not isinstance(obj, dict) or sorted(obj) != sorted(KEYS) or obj.get("format") != FORMAT:
        raise DefenceError(f"{PACK_FILE} is not a {FORMAT} pack (keys: {', '.join(KEYS)})")
    entries = obj["blocklist"]
    rules = obj["rules"]
    if not isinstance(entries, list) or not (rules is None or isinstance(rules, dict)):
        raise DefenceError(f"{PACK_FILE}: rules must be an object or null, blocklist a list")
    blocklist = []
    for i, raw in enumerate(entries):
        if not isinstance(raw, dict) or not isinstance(raw.get("net"), str):
            raise DefenceError(f"{PACK_FILE}: blocklist[{i}] is not an entry")
        blocklist.append(
            BlocklistEntry(raw["net"], parse_stamp(raw.get("expires_at"), f"blocklist[{i}]"), raw.get("comment"))
        )
    rule_list = rules.get("rules") if rules else None
    return Pack(
        version=str(obj["version"]),
        digest=digest_of(data),
        created_at=parse_stamp(obj["created_at"], "created_at"),
        rules=rules,
        blocklist=tuple(blocklist),
        rules_version=str(rules["version"]) if rules and "version" in rules else None,
        rule_count=len(rule_list) if isinstance(rule_list, list) else 0,
        blocklist_count=len(blocklist),
        signed_by=signed_by,
    )
