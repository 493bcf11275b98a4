"""A pack's blocklist in nftables: its networks go into the ban sets with their own timeouts.

The ban sets (``banned_v4``/``banned_v6``, declared by the ``sentry_firewall`` role) have ``flags interval,
timeout``, so an element may be a network. One ``nft -f -`` transaction (argument list, script on stdin, a
timeout) moves from the previous pack's entries to the new pack's: either all of it takes effect or none::

    add element inet sentry banned_v4 { 198.51.100.0/24 timeout 1s }     # an entry of the previous pack:
    delete element inet sentry banned_v4 { 198.51.100.0/24 }             # gone, even if it already expired
    add element inet sentry banned_v4 { 203.0.113.0/24 timeout 1s }      # a new entry: replaced, so its
    delete element inet sentry banned_v4 { 203.0.113.0/24 }              # timeout is the pack's, whatever
    add element inet sentry banned_v4 { 203.0.113.0/24 timeout 86400s }  # was there before

An element that expired cannot be deleted (nft fails, and the whole transaction with it), and one may expire
between listing and deleting: adding it first with a 1 s timeout makes the delete always valid.

Interval sets refuse overlapping elements, and nft checks that against the set as it is *before* the
transaction. So the elements a new network overlaps (single-address bans by fail2ban or the agent inside it,
an entry of the previous pack it contains or is contained in) are removed in a short transaction before it; the
network blocks them from then on, until it expires. A new entry inside a network that stays (not ours) is left
out: it is already blocked. Entries of the pack inside another of its entries are left out too.
"""

from __future__ import annotations

import ipaddress
import json
import math
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import AgentConfig, IPNetwork
from .packs import BlockEntry

__all__ = ["BlocklistError", "NftBlocklist", "Plan", "parse_elements", "plan"]

_MAX_OUTPUT = 64 * 1024 * 1024


class BlocklistError(Exception):
    """nft refused or could not run; the message is one line."""


@dataclass(frozen=True)
class Plan:
    pre: tuple[IPNetwork, ...]  # existing elements to remove first (they overlap a new entry)
    remove: tuple[IPNetwork, ...]  # entries of the previous pack, not in the new one
    add: tuple[tuple[IPNetwork, int], ...]  # (network, timeout seconds)


def _collapse(entries: Iterable[BlockEntry], now: float) -> dict[IPNetwork, int]:
    live = {e.net: math.ceil(e.expires_at - now) for e in entries if e.expires_at - now >= 1}
    return {n: t for n, t in live.items() if not any(o != n and _inside(n, o) for o in live)}


def _inside(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


def _overlap(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)


def plan(new: Iterable[BlockEntry], old: Iterable[IPNetwork], existing: Iterable[IPNetwork], now: float) -> Plan:
    """What to remove and add to go from the previous pack's entries (``old``) to ``new`` (pure)."""
    adds = _collapse(new, now)
    old_set, existing_set = set(old), set(existing)
    pre: list[IPNetwork] = []
    for e in sorted(existing_set - set(adds), key=_order):
        if e not in old_set and any(_inside(n, e) for n in adds):
            continue  # a network that is not ours and stays: the new entries inside it are left out below
        if any(_overlap(e, n) for n in adds):
            pre.append(e)
    keep = set(existing_set) - set(pre) - old_set
    add = [
        (n, t)
        for n, t in sorted(adds.items(), key=lambda i: _order(i[0]))
        if not any(k != n and _inside(n, k) for k in keep)
    ]
    remove = [o for o in sorted(old_set - set(adds) - set(pre), key=_order)]
    return Plan(tuple(pre), tuple(remove), tuple(add))


def _order(net: IPNetwork) -> tuple[int, int, int]:
    return (net.version, int(net.network_address), net.prefixlen)


def parse_elements(data: Any) -> list[IPNetwork]:
    """The elements of ``nft -j list set`` output: addresses and prefixes (ranges are not ours, skipped)."""
    out: list[IPNetwork] = []
    for obj in data.get("nftables", []) if isinstance(data, dict) else []:
        s = obj.get("set") if isinstance(obj, dict) else None
        if not isinstance(s, dict):
            continue
        for item in s.get("elem", []) or []:
            val = item.get("elem", {}).get("val") if isinstance(item, dict) and "elem" in item else item
            try:
                if isinstance(val, str):
                    out.append(ipaddress.ip_network(val))
                elif isinstance(val, dict) and isinstance(val.get("prefix"), dict):
                    p = val["prefix"]
                    out.append(ipaddress.ip_network(f"{p['addr']}/{p['len']}", strict=False))
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

    def _element(self, verb: str, net: IPNetwork, timeout: int | None = None) -> str:
        tail = f" timeout {timeout}s" if timeout is not None else ""
        return f"{verb} element {self.family} {self.table} {self._set(net)} {{ {net}{tail} }}\n"

    def _gone(self, net: IPNetwork) -> str:
        return self._element("add", net, 1) + self._element("delete", net)

    def scripts(self, p: Plan) -> tuple[str, str]:
        """(pre transaction, main transaction) as nft scripts; the pre one is "" when nothing overlaps."""
        pre = "".join(self._gone(n) for n in p.pre)
        main = "".join(self._gone(n) for n in p.remove)
        main += "".join(self._gone(n) + self._element("add", n, t) for n, t in p.add)
        return pre, main

    def existing(self) -> list[IPNetwork]:
        out: list[IPNetwork] = []
        for name in (self.set_v4, self.set_v6):
            raw = self._run(["-j", "list", "set", self.family, self.table, name], None, f"listing {name}")
            if len(raw) > _MAX_OUTPUT:
                raise BlocklistError(f"nft listed more than {_MAX_OUTPUT} bytes of {name}; not reading it")
            try:
                out.extend(parse_elements(json.loads(raw)))
            except ValueError as exc:
                raise BlocklistError(f"nft -j output of {name} is not JSON: {exc}") from None
        return out

    def apply(self, new: Sequence[BlockEntry], old: Sequence[IPNetwork], now: float) -> Plan:
        """Replace ``old`` (the previous pack's networks) by ``new`` in the ban sets; BlocklistError."""
        p = plan(new, old, self.existing() if (new or old) else (), now)
        pre, main = self.scripts(p)
        if pre:
            self._run(["-f", "-"], pre, "removing bans the new entries cover")
        if main:
            self._run(["-f", "-"], main, "applying the blocklist")
        return p

    def _run(self, args: list[str], script: str | None, what: str) -> bytes:
        argv = [str(self.nft_binary), *args]
        try:
            proc = subprocess.run(
                argv,
                input=script.encode() if script is not None else None,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BlocklistError(f"nft timed out after {self.timeout:g}s {what}") from None
        except OSError as exc:
            raise BlocklistError(f"cannot run {self.nft_binary}: {exc.strerror or exc}") from None
        if proc.returncode != 0:
            detail = " ".join(proc.stderr.decode(errors="replace").split())[:300]
            raise BlocklistError(f"nft exited {proc.returncode} {what}: {detail or 'no output'}")
        return bytes(proc.stdout)
