"""sentry_firewall on converged lab hosts: the table, its sets, management access, persistence, reloads."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.lab

TEST_ADDR = "198.51.100.77"  # TEST-NET-2: only ever an element in a set, no traffic is sent to it


def _table(host) -> dict:
    return json.loads(host.check_output("nft -j list table inet sentry"))


def _objects(host, kind: str) -> list[dict]:
    return [item[kind] for item in _table(host)["nftables"] if kind in item]


def test_banned_sets_have_the_contract_types(stack_host):
    sets = {s["name"]: s for s in _objects(stack_host, "set")}
    assert sets["banned_v4"]["type"] == "ipv4_addr"
    assert sets["banned_v6"]["type"] == "ipv6_addr"
    for name in ("banned_v4", "banned_v6"):
        assert "timeout" in sets[name]["flags"], name


def test_input_chain_accepts_by_default(stack_host):
    chains = {c["name"]: c for c in _objects(stack_host, "chain")}
    assert chains["input"]["hook"] == "input"
    assert chains["input"]["policy"] == "accept"


def test_ssh_only_from_management_networks(stack_host, stack_inventory):
    rules = stack_host.check_output("nft list chain inet sentry input")
    for net in stack_inventory.group_vars["sentry_mgmt_networks"]:
        assert net in rules
    lines = [line.strip() for line in rules.splitlines()]
    accept = next(i for i, line in enumerate(lines) if line.startswith("tcp dport 22 ip") and "accept" in line)
    drop = next(i for i, line in enumerate(lines) if line.startswith("tcp dport 22") and line.endswith("drop"))
    ban = next(i for i, line in enumerate(lines) if "@banned_v4" in line)
    assert accept < ban < drop, "management SSH is accepted before bans and before the catch-all drop"
    assert any(line.startswith("ct state invalid") and line.endswith("drop") for line in lines)


def test_game_ports_are_rate_limited_per_source(stack_host, stack_inventory):
    rules = stack_host.check_output("nft list chain inet sentry input")
    for proto in ("tcp", "udp"):
        for port in stack_inventory.group_vars[f"sentry_game_ports_{proto}"]:
            limited = [
                line
                for line in rules.splitlines()
                if f"{proto} dport" in line and str(port) in line and f"@game_{proto}_v4" in line
            ]
            assert limited and "limit rate over" in limited[0], (proto, port)


def test_ruleset_is_loaded_at_boot_without_flushing_other_tables(stack_host):
    unit = stack_host.service("sentry-firewall")
    assert unit.is_enabled and unit.is_running
    statements = [
        line.strip()
        for line in stack_host.file("/etc/nftables.d/sentry.nft").content_string.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert not [s for s in statements if s.startswith(("flush ruleset", "delete table", "flush table"))]
    assert "flush chain inet sentry input" in statements
    assert stack_host.run("nft -c -f /etc/nftables.d/sentry.nft").rc == 0


def test_no_commit_confirm_left_pending(stack_host):
    assert stack_host.run("systemctl is-active sentry-firewall-revert.timer").stdout.strip() != "active"
    live = stack_host.file("/etc/nftables.d/sentry.nft").sha256sum
    assert stack_host.file("/var/lib/sentry-firewall/candidate.nft").sha256sum == live


def test_reload_keeps_dynamic_bans(stack_host):
    stack_host.check_output(f"nft add element inet sentry banned_v4 '{{ {TEST_ADDR} timeout 5m }}'")
    try:
        stack_host.check_output("systemctl reload sentry-firewall")
        assert TEST_ADDR in stack_host.check_output("nft list set inet sentry banned_v4")
    finally:
        stack_host.run(f"nft delete element inet sentry banned_v4 '{{ {TEST_ADDR} }}'")
