"""Heartbeat figures from nftables: parsing `nft -j list table` (pure; the real call runs on lab hosts)."""

from __future__ import annotations

from typing import Any

import pytest
from sentry_agent.firewall import FirewallError, parse_table


def rule(expr: list[dict[str, Any]], comment: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"family": "inet", "table": "sentry", "chain": "input", "expr": expr}
    if comment:
        body["comment"] = comment
    return {"rule": body}


COUNTER = {"counter": {"packets": 3, "bytes": 180}}
DROP: dict[str, Any] = {"drop": None}


def listing() -> dict[str, Any]:
    return {
        "nftables": [
            {"metainfo": {"json_schema_version": 1}},
            {"set": {"name": "banned_v4", "elem": [{"elem": {"val": "203.0.113.7"}}, {"elem": {"val": "203.0.11.8"}}]}},
            {"set": {"name": "banned_v6"}},  # empty: no elem key at all
            {"set": {"name": "game_udp_v4", "elem": [{"elem": {"val": "198.51.100.1"}}]}},  # a meter, not bans
            rule([{"match": {"left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": None}]),
            rule([{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}}, COUNTER, DROP]),
            rule(
                [
                    {"match": {"left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@banned_v4"}},
                    COUNTER,
                    DROP,
                ]
            ),
            rule(
                [
                    {"match": {"left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"set": [27015]}}},
                    {"set": {"op": "update", "set": "@game_udp_v4", "elem": {}}},
                    COUNTER,
                    DROP,
                ]
            ),
            rule([{"match": {"left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, COUNTER, DROP]),
            rule([{"match": {"left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, COUNTER, DROP]),
            rule([COUNTER, DROP], comment="custom"),
        ]
    }


def test_bans_are_the_elements_of_the_ban_sets_only() -> None:
    assert parse_table(listing(), ["banned_v4", "banned_v6"]).bans_active == 2


def test_counters_are_named_by_what_their_rule_matches() -> None:
    counters = parse_table(listing(), ["banned_v4", "banned_v6"]).counters
    names = ["ct_state_invalid", "banned_v4", "game_udp_v4", "tcp_dport_22", "tcp_dport_22#2", "custom"]
    assert list(counters) == names
    assert counters["banned_v4"] == {"packets": 3, "bytes": 180}


def test_output_that_is_not_a_listing_is_an_error() -> None:
    with pytest.raises(FirewallError):
        parse_table({"something": []}, ["banned_v4"])
