"""sentry_firewall: the live nftables table, its ban sets, management-only SSH, game-port limits, persistence."""

from __future__ import annotations

import json
from typing import Any

from ..expected import Expected
from .base import Check, Finding, compare, file_facts

RULESET = "/etc/nftables.d/sentry.nft"


def _chain(host: Any) -> list[str] | None:
    out = host.run("nft list chain inet sentry input")
    if out.rc != 0:
        return None
    return [line.strip() for line in out.stdout.splitlines()]


def _missing_table() -> Finding:
    return Finding(False, "table inet sentry with chain input", "no table inet sentry / chain input")


def service(host: Any, exp: Expected) -> Finding:
    unit = host.service("sentry-firewall")
    facts = file_facts(host, RULESET)
    valid = facts["exists"] and host.run(f"nft -c -f {RULESET}").rc == 0
    return compare(
        {"enabled": True, "active": True, "ruleset owner": "root:root", "ruleset mode": "0644", "ruleset valid": True},
        {
            "enabled": unit.is_enabled,
            "active": unit.is_running,
            "ruleset owner": facts.get("owner", "(missing)"),
            "ruleset mode": facts.get("mode", "(missing)"),
            "ruleset valid": valid,
        },
    )


def ban_sets(host: Any, exp: Expected) -> Finding:
    out = host.run("nft -j list sets table inet sentry")
    sets: dict[str, Any] = {}
    if out.rc == 0:
        sets = {i["set"]["name"]: i["set"] for i in json.loads(out.stdout)["nftables"] if "set" in i}

    def describe(name: str) -> str:
        s = sets.get(name)
        if s is None:
            return "missing"
        flags = s.get("flags", [])
        # interval: a detection pack's blocklist puts networks into the sets.
        return f"{s['type']}{' interval' if 'interval' in flags else ''}{' with timeout' if 'timeout' in flags else ''}"

    return compare(
        {"banned_v4": "ipv4_addr interval with timeout", "banned_v6": "ipv6_addr interval with timeout"},
        {"banned_v4": describe("banned_v4"), "banned_v6": describe("banned_v6")},
    )


def mgmt_ssh(host: Any, exp: Expected) -> Finding:
    lines = _chain(host)
    if lines is None:
        return _missing_table()

    def first(pred: Any) -> int | None:
        return next((i for i, line in enumerate(lines) if pred(line)), None)

    accepts = {
        net: first(lambda line, net=net: line.startswith("tcp dport 22 ip") and net in line and "accept" in line)
        for net in exp.mgmt_networks
    }
    ban = first(lambda line: "@banned_v4" in line and "drop" in line)
    drop = first(lambda line: line.startswith("tcp dport 22") and line.endswith("drop"))
    ordered = drop is not None and ban is not None and all(i is not None and i < ban < drop for i in accepts.values())
    return compare(
        {
            "ssh accepted from": list(exp.mgmt_networks),
            "banned sources dropped": True,
            "other ssh dropped": True,
            "accept before bans before drop": True,
        },
        {
            "ssh accepted from": [n for n, i in accepts.items() if i is not None],
            "banned sources dropped": ban is not None,
            "other ssh dropped": drop is not None,
            "accept before bans before drop": ordered,
        },
    )


def game_ports(host: Any, exp: Expected) -> Finding:
    lines = _chain(host)
    if lines is None:
        return _missing_table()
    wanted = [f"{p}/tcp" for p in exp.game_ports_tcp] + [f"{p}/udp" for p in exp.game_ports_udp]

    def limited(spec: str) -> bool:
        port, proto = spec.split("/")
        return any(
            f"{proto} dport" in line and port in line and f"@game_{proto}_v4" in line and "limit rate over" in line
            for line in lines
        )

    return compare({"rate limited per source": wanted}, {"rate limited per source": [s for s in wanted if limited(s)]})


def invalid_drop(host: Any, exp: Expected) -> Finding:
    lines = _chain(host)
    if lines is None:
        return _missing_table()
    present = any(line.startswith("ct state invalid") and line.endswith("drop") for line in lines)
    return compare({"ct state invalid drop": True}, {"ct state invalid drop": present})


def no_pending_revert(host: Any, exp: Expected) -> Finding:
    timer = host.run("systemctl is-active sentry-firewall-revert.timer").stdout.strip() or "unknown"
    return compare({"revert timer": "inactive"}, {"revert timer": "active" if timer == "active" else "inactive"})


CHECKS = (
    Check("firewall.service", "The sentry-firewall service is enabled and active; its root-owned ruleset is valid.",
          "firewall", service),
    Check("firewall.ban-sets", "The ban sets banned_v4 and banned_v6 exist, take networks and expire their elements.",
          "firewall", ban_sets),
    Check("firewall.mgmt-ssh", "SSH is accepted only from the management networks; bans apply; other SSH is dropped.",
          "firewall", mgmt_ssh),
    Check("firewall.game-ports", "Every game port of the client is rate-limited per source address.",
          "firewall", game_ports),
    Check("firewall.invalid-drop", "Packets in connection state invalid are dropped.", "firewall", invalid_drop),
    Check("firewall.no-pending-revert", "No firewall change is waiting for its commit-confirm revert.",
          "firewall", no_pending_revert),
)  # fmt: skip
