"""What the firewall says, for heartbeats: addresses banned now and the drop counters of Sentry's table.

One bounded ``nft -j list table <family> <table>`` (argument list, no shell, a timeout) gives both: the
elements of the banned sets and every rule's anonymous counter. :func:`parse_table` turns its JSON into
:class:`FirewallStats`; it is pure so the naming of counters is tested without nftables.

A counter is named after what its rule matches, so names stay stable across reloads (rule handles do not):
the rule's comment if it has one; else the set it refers to (``banned_v4``, ``game_udp_v4``); else its
``ct state`` or ``<proto>_<field>`` match (``ct_state_invalid``, ``tcp_dport_22``). A name seen twice gets
``#2``, ``#3`` appended in rule order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import AgentConfig
from .nft import NftError, run_nft

__all__ = ["FirewallError", "FirewallStats", "NftStats", "StatsFunc", "parse_table"]

# Output of a table with a few thousand banned addresses is well under this; more is not a table of ours.
_MAX_OUTPUT = 16 * 1024 * 1024


class FirewallError(Exception):
    """nft could not be read; the message is one line."""


@dataclass(frozen=True)
class FirewallStats:
    bans_active: int
    counters: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> {"packets", "bytes"}


StatsFunc = Callable[[], FirewallStats]


def _objects(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("nftables"), list):
        raise FirewallError("nft -j output has no nftables list")
    return [o for o in data["nftables"] if isinstance(o, dict)]


def _match_name(expr: Iterable[Any]) -> str | None:
    fallback: str | None = None
    for item in expr:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("set"), dict):  # "update @game_udp_v4 { ... }"
            ref = item["set"].get("set")
            if isinstance(ref, str) and ref.startswith("@"):
                return ref[1:]
        match = item.get("match")
        if not isinstance(match, dict):
            continue
        left, right = match.get("left"), match.get("right")
        if isinstance(right, str) and right.startswith("@"):
            return right[1:]
        if fallback is not None or not isinstance(left, dict):
            continue
        if isinstance(left.get("ct"), dict):
            value = right if isinstance(right, str) else "_".join(str(v) for v in right or ())
            fallback = f"ct_{left['ct'].get('key', '')}_{value}"
        elif isinstance(left.get("payload"), dict):
            p = left["payload"]
            value = str(right) if isinstance(right, int | str) else "set"
            fallback = f"{p.get('protocol', '')}_{p.get('field', '')}_{value}"
    return fallback


def parse_table(data: Any, ban_sets: Iterable[str]) -> FirewallStats:
    """Stats from the JSON of ``nft -j list table``: elements in ``ban_sets``, counters of rules."""
    sets = set(ban_sets)
    bans = 0
    counters: dict[str, dict[str, int]] = {}
    for obj in _objects(data):
        if isinstance(obj.get("set"), dict):
            s = obj["set"]
            if s.get("name") in sets and isinstance(s.get("elem"), list):
                bans += len(s["elem"])
        elif isinstance(obj.get("rule"), dict):
            rule = obj["rule"]
            expr = rule.get("expr") if isinstance(rule.get("expr"), list) else []
            counters_in = [e["counter"] for e in expr if isinstance(e, dict) and isinstance(e.get("counter"), dict)]
            counter = counters_in[0] if counters_in else None
            if counter is None:
                continue
            comment = rule.get("comment")
            base = comment if isinstance(comment, str) and comment else _match_name(expr)
            base = base or f"{rule.get('chain', 'rule')}"
            name, n = base, 1
            while name in counters:
                n += 1
                name = f"{base}#{n}"
            counters[name] = {"packets": int(counter.get("packets", 0)), "bytes": int(counter.get("bytes", 0))}
    return FirewallStats(bans, counters)


class NftStats:
    """The production :data:`StatsFunc`: one bounded nft call."""

    def __init__(
        self,
        *,
        family: str,
        table: str,
        ban_sets: Iterable[str],
        nft_binary: Path = Path("/usr/sbin/nft"),
        timeout: float = 5.0,
    ) -> None:
        self.argv = [str(nft_binary), "-j", "list", "table", family, table]
        self.ban_sets = tuple(ban_sets)
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: AgentConfig) -> NftStats:
        return cls(
            family=config.nft_table_family,
            table=config.nft_table,
            ban_sets=(config.nft_set_v4, config.nft_set_v6),
            nft_binary=config.nft_binary,
            timeout=config.ban_timeout_seconds,
        )

    def __call__(self) -> FirewallStats:
        try:
            out = run_nft(Path(self.argv[0]), self.argv[1:], timeout=self.timeout, what="listing the firewall table")
        except NftError as exc:
            raise FirewallError(str(exc)) from None
        if len(out) > _MAX_OUTPUT:
            raise FirewallError(f"nft listed more than {_MAX_OUTPUT} bytes; not reading it")
        try:
            return parse_table(json.loads(out), self.ban_sets)
        except (ValueError, TypeError) as exc:
            raise FirewallError(f"nft -j output is not what was expected: {exc}") from None
