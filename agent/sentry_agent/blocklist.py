"""A pack's blocklist in nftables: its networks go into the ban sets with their own timeouts.

The ban sets (``banned_v4``/``banned_v6``, declared by the ``sentry_firewall`` role) have ``flags interval,
timeout``, so an element may be a network. One ``nft -f -`` transaction (argument list, script on stdin, a
timeout) moves from the previous pack's entries to the new pack's: either all of it takes effect or none::

    add element inet sentry banned_v4 { 198.51.100.0/24 timeout 1s, 203.0.113.0/24 timeout 1s }
    delete element inet sentry banned_v4 { 198.51.100.0/24, 203.0.113.0/24 }
    add element inet sentry banned_v4 { 203.0.113.0/24 timeout 86400s }

(198.51.100.0/24: an entry of the previous pack, gone even if it already expired; 203.0.113.0/24: a new entry,
replaced so that its timeout is the pack's whatever was there before; element lists go in chunks of 1000.)

An element that expired cannot be deleted (nft fails, and the whole transaction with it), and one may expire
between listing and deleting: adding it first with a 1 s timeout makes the delete always valid.

Interval sets refuse overlapping elements, and nft checks that against the set as it is *before* the
transaction. So the elements a new network overlaps (single-address bans by fail2ban or the agent inside it,
an entry of the previous pack it contains or is contained in) are removed in a short transaction before it; the
network blocks them from then on, until it expires. A new entry inside a network that stays (not ours) is left
out: it is already blocked. Entries of the pack inside another of its entries are left out too.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import AgentConfig, IPNetwork
from .nft import NftError, run_nft
from .packs import BlockEntry

__all__ = ["BlocklistError", "NftBlocklist", "Plan", "parse_elements", "plan"]

_MAX_OUTPUT = 64 * 1024 * 1024
_CHUNK = 1000
SAME_EXPIRY_SECONDS = 5
# nft 1.0.6 deletes an interval element in about 10 ms in a set of 10000: bound per deletion, with room.
DELETE_SECONDS = 0.05


class BlocklistError(Exception):
    """nft refused or could not run; the message is one line."""


@dataclass(frozen=True)
class Plan:
    pre: tuple[IPNetwork, ...]  # existing elements to remove first (they overlap a new entry)
    remove: tuple[IPNetwork, ...]  # entries of the previous pack, not in the new one
    add: tuple[tuple[IPNetwork, int], ...]  # (network, timeout seconds)
    replace: tuple[IPNetwork, ...] = ()  # of those, in the set with another expiry: removed first


Key = tuple[int, int, int]  # (IP version, first address as int, prefix length)


def _key(net: IPNetwork) -> Key:
    return (net.version, int(net.network_address), net.prefixlen)


def _end(key: Key) -> int:
    bits = 32 if key[0] == 4 else 128
    return key[1] + (1 << (bits - key[2])) - 1


def _inside_any(key: Key, nets: set[Key]) -> bool:
    """Is ``key`` strictly inside one of ``nets``? (Its at most 128 supernets looked up: linear in the entries.)"""
    version, start, length = key
    bits = 32 if version == 4 else 128
    for shorter in range(length):
        mask = ((1 << shorter) - 1) << (bits - shorter)
        if (version, start & mask, shorter) in nets:
            return True
    return False


def _holds_any(key: Key, starts: list[Key]) -> bool:
    """Is one of ``starts`` (sorted) strictly inside ``key``? CIDR networks nest or are apart, so that is one with
    its first address within ``key``'s range."""
    i = bisect.bisect_left(starts, (key[0], key[1], key[2] + 1))
    return i < len(starts) and starts[i][0] == key[0] and starts[i][1] <= _end(key)


def plan(
    new: Iterable[BlockEntry], old: Iterable[IPNetwork], existing: Mapping[IPNetwork, int | None], now: float
) -> Plan:
    """What to remove and add to go from the previous pack's entries (``old``) to ``new`` (pure; n log n, so a
    10000-entry pack against a set of as many bans takes milliseconds)."""
    live = {e.net: math.ceil(e.expires_at - now) for e in new if e.expires_at - now >= 1}
    live_keys = {_key(n) for n in live}
    adds = {n: t for n, t in live.items() if not _inside_any(_key(n), live_keys)}
    add_keys = {_key(n) for n in adds}
    add_sorted = sorted(add_keys)
    old_keys = {_key(n) for n in old}
    pre: list[IPNetwork] = []
    for e in sorted(set(existing), key=_key):
        k = _key(e)
        if k in add_keys:
            continue
        holds_new = _holds_any(k, add_sorted)
        if holds_new and k not in old_keys:
            continue  # a network that is not ours and stays: the new entries inside it are left out below
        if holds_new or _inside_any(k, add_keys):
            pre.append(e)
    pre_keys = {_key(n) for n in pre}
    keep = {_key(e) for e in existing} - pre_keys - old_keys
    add = [(n, t) for n, t in sorted(adds.items(), key=lambda i: _key(i[0])) if not _inside_any(_key(n), keep)]
    # Already there with the same expiry (a restart resuming its pack, a new pack keeping an entry): left alone.
    # nft deletes interval elements slowly (about 10 ms each in a set of 10000, nft 1.0.6), so only what differs
    # is deleted.
    add = [(n, t) for n, t in add if not (n in existing and _same(existing[n], t))]
    replace = [n for n, _ in add if n in existing]
    remove = sorted((n for n in set(old) if _key(n) not in add_keys and _key(n) not in pre_keys), key=_key)
    return Plan(tuple(pre), tuple(remove), tuple(add), tuple(replace))


def _same(remaining: int | None, timeout: int) -> bool:
    return remaining is not None and abs(remaining - timeout) <= SAME_EXPIRY_SECONDS


def parse_elements(data: Any) -> dict[IPNetwork, int | None]:
    """The elements of ``nft -j list set`` output, addresses and prefixes (ranges are not ours, skipped), with
    their remaining seconds (None: no timeout)."""
    out: dict[IPNetwork, int | None] = {}
    for obj in data.get("nftables", []) if isinstance(data, dict) else []:
        s = obj.get("set") if isinstance(obj, dict) else None
        if not isinstance(s, dict):
            continue
        for item in s.get("elem", []) or []:
            elem = item.get("elem", {}) if isinstance(item, dict) and "elem" in item else {"val": item}
            val, expires = elem.get("val"), elem.get("expires")
            remaining = expires if isinstance(expires, int) else None
            try:
                if isinstance(val, str):
                    out[ipaddress.ip_network(val)] = remaining
                elif isinstance(val, dict) and isinstance(val.get("prefix"), dict):
                    p = val["prefix"]
                    out[ipaddress.ip_network(f"{p['addr']}/{p['len']}", strict=False)] = remaining
            except (KeyError, ValueError):
                continue
    return out


class NftBlocklist:
    """Applies a :class:`Plan` with bounded nft calls."""

    def __init__(
        self,
        *,
        family: str = "inet",
        table: str = "sentry",
        set_v4: str = "banned_v4",
        set_v6: str = "banned_v6",
        nft_binary: Path = Path("/usr/sbin/nft"),
        timeout: float = 5.0,
    ) -> None:
        self.family, self.table, self.set_v4, self.set_v6 = family, table, set_v4, set_v6
        self.nft_binary, self.timeout = nft_binary, timeout

    @classmethod
    def from_config(cls, config: AgentConfig) -> NftBlocklist:
        return cls(
            family=config.nft_table_family,
            table=config.nft_table,
            set_v4=config.nft_set_v4,
            set_v6=config.nft_set_v6,
            nft_binary=config.nft_binary,
            # One transaction of up to 10000 entries: longer than a single ban may take.
            timeout=max(config.ban_timeout_seconds, 30.0),
        )

    def _set(self, net: IPNetwork) -> str:
        return self.set_v4 if net.version == 4 else self.set_v6

    def _batch(self, verb: str, items: Sequence[tuple[IPNetwork, int | None]]) -> str:
        """One command per set and chunk: nft parses one element list far faster than a command per element."""
        out = []
        for name, version in ((self.set_v4, 4), (self.set_v6, 6)):
            mine = [f"{n} timeout {t}s" if t is not None else str(n) for n, t in items if n.version == version]
            for i in range(0, len(mine), _CHUNK):
                out.append(
                    f"{verb} element {self.family} {self.table} {name} {{ {', '.join(mine[i : i + _CHUNK])} }}\n"
                )
        return "".join(out)

    def _gone(self, nets: Sequence[IPNetwork]) -> str:
        return self._batch("add", [(n, 1) for n in nets]) + self._batch("delete", [(n, None) for n in nets])

    def scripts(self, p: Plan) -> tuple[str, str]:
        """(pre transaction, main transaction) as nft scripts; the pre one is "" when nothing overlaps."""
        main = self._gone([*p.remove, *p.replace]) + self._batch("add", list(p.add))
        return self._gone(p.pre), main

    def existing(self) -> dict[IPNetwork, int | None]:
        out: dict[IPNetwork, int | None] = {}
        for name in (self.set_v4, self.set_v6):
            raw = self._run(["-j", "list", "set", self.family, self.table, name], None, f"listing {name}")
            if len(raw) > _MAX_OUTPUT:
                raise BlocklistError(f"nft listed more than {_MAX_OUTPUT} bytes of {name}; not reading it")
            try:
                out.update(parse_elements(json.loads(raw)))
            except ValueError as exc:
                raise BlocklistError(f"nft -j output of {name} is not JSON: {exc}") from None
        return out

    def apply(self, new: Sequence[BlockEntry], old: Sequence[IPNetwork], now: float) -> Plan:
        """Replace ``old`` (the previous pack's networks) by ``new`` in the ban sets; BlocklistError."""
        p = plan(new, old, self.existing() if (new or old) else {}, now)
        pre, main = self.scripts(p)
        # Deleting is what takes time (see plan): the bound grows with the number of deletions.
        if pre:
            self._run(["-f", "-"], pre, "removing bans the new entries cover", len(p.pre))
        if main:
            self._run(["-f", "-"], main, "applying the blocklist", len(p.remove) + len(p.replace))
        return p

    def _run(self, args: list[str], script: str | None, what: str, deletions: int = 0) -> bytes:
        try:
            return run_nft(
                self.nft_binary, args, timeout=self.timeout + DELETE_SECONDS * deletions, what=what, script=script
            )
        except NftError as exc:
            raise BlocklistError(str(exc)) from None
