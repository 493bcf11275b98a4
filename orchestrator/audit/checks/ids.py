"""sentry_ids: fail2ban with Sentry's jails, banning into the firewall's sets (tiers with the ids component)."""

from __future__ import annotations

from typing import Any

from ..expected import Expected
from .base import Check, Finding, compare

JAIL = "/etc/fail2ban/jail.d/sentry.local"
ACTION = "/etc/fail2ban/action.d/sentry-nftables.conf"


def fail2ban(host: Any, exp: Expected) -> Finding:
    unit = host.service("fail2ban")
    status = host.run("fail2ban-client status")
    jails = status.stdout.split("Jail list:", 1)[1].replace(",", " ").split() if status.rc == 0 else []
    return compare(
        {"enabled": True, "running": True, "jails": ["sentry-game", "sshd"]},
        {"enabled": unit.is_enabled, "running": unit.is_running, "jails": sorted(jails)},
    )


def jail_config(host: Any, exp: Expected) -> Finding:
    jail = host.file(JAIL).content_string if host.file(JAIL).exists else ""
    action = host.file(ACTION).content_string if host.file(ACTION).exists else ""
    ignore_line = next((line for line in jail.splitlines() if line.startswith("ignoreip")), "")
    ignored = ignore_line.split("=", 1)[1].split() if "=" in ignore_line else []
    return compare(
        {
            "banaction": "sentry-nftables",
            "never banned": list(exp.mgmt_networks),
            "maxretry": exp.fail2ban_maxretry,
            "bans into": "inet sentry banned_v4/banned_v6",
        },
        {
            "banaction": "sentry-nftables" if "banaction = sentry-nftables" in jail else "other",
            "never banned": [n for n in exp.mgmt_networks if n in ignored],
            "maxretry": next((int(x.split("=")[1]) for x in jail.splitlines() if x.startswith("maxretry")), None),
            "bans into": "inet sentry banned_v4/banned_v6"
            if "nft_table = sentry" in action and "addr_set = banned_v4" in action and "addr_set = banned_v6" in action
            else "elsewhere",
        },
    )


CHECKS = (
    Check("ids.fail2ban", "fail2ban is enabled and runs the sshd and sentry-game jails.", "ids", fail2ban),
    Check("ids.jail-config", "The jails ban into the firewall's sets, never ban management networks, and use the "
          "tier's maxretry.", "ids", jail_config),
)  # fmt: skip
