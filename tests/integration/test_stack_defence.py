"""The stack defending for real: an attack gets its source banned within seconds while a management address
never is, and a firewall change that would lock Sentry's controller out reverts by itself."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import replace

import pytest

from orchestrator import inventory, provision, vault
from orchestrator.lab import machine
from orchestrator.runner import run_playbook, tail_stdout

from .conftest import Provisioned

pytestmark = pytest.mark.lab

GAME_LOG = "/var/log/sentry-game/login.log"


def test_attack_is_banned_within_seconds_and_a_management_address_never(provisioned: Provisioned) -> None:
    env = provisioned.env
    host = env.hosts()[1]
    state = env.lab.state()
    assert state is not None
    attacker = "198.51.100.77"
    insider = str(ipaddress.IPv4Network(state.subnet).network_address + 250)  # inside the management network
    env.ssh(host, f"mkdir -p /var/log/sentry-game && touch {GAME_LOG}")
    time.sleep(1)
    burst = "".join(f"LOGIN FAILED user=u{i} ip={ip}\n" for ip in (insider, attacker) for i in range(15))
    env.ssh(host, f"printf '{burst}' >> {GAME_LOG}")
    try:
        deadline = time.monotonic() + 15
        banned = ""
        while time.monotonic() < deadline and attacker not in banned:
            banned = env.ssh(host, "nft list set inet sentry banned_v4")
            time.sleep(0.5)
        assert attacker in banned, banned
        time.sleep(2)  # give a wrong ban of the insider every chance to appear
        banned = env.ssh(host, "nft list set inet sentry banned_v4")
        assert insider not in banned, banned
    finally:
        cleanup = f"fail2ban-client unban {attacker}; nft delete element inet sentry banned_v4 '{{ {attacker} }}'"
        env.ssh(host, cleanup, check=False)


def test_a_lockout_firewall_change_reverts_by_itself(provisioned: Provisioned) -> None:
    env = provisioned.env
    victim = env.hosts()[2]
    settings = env.settings
    inv = inventory.load(settings.inventories, provisioned.client)
    request = provision.site_request(settings, inv, provisioned.first.bundle, limit=victim.name, tags=("firewall",))  # type: ignore[attr-defined]
    request = replace(
        request,
        vault=vault.run_files(settings, inv),
        extravars={
            **request.extravars,
            # A management network the controller is not in, with the safety pre-check off: this change would
            # cut Sentry off for good if it stuck.
            "sentry_mgmt_networks": ["192.0.2.0/24"],
            "sentry_firewall_check_controller_access": False,
            "sentry_firewall_confirm_timeout": 40,
            "sentry_firewall_confirm_connect_timeout": 20,
        },
    )
    result = run_playbook(request, settings)
    assert result.by_status("failed") == [victim.name] or result.by_status("unreachable") == [victim.name], tail_stdout(
        result, 60
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not machine.ssh_banner(victim.address):
        time.sleep(1)
    reachable = False
    while time.monotonic() < deadline and not reachable:
        reachable = "ok" in env.ssh(victim, "echo ok", check=False)
        time.sleep(1)
    assert reachable, "the host did not revert its firewall"
    rules = env.ssh(victim, "nft list chain inet sentry input")
    state = env.lab.state()
    assert state is not None and state.subnet in rules and "192.0.2.0/24" not in rules
    # The stack converges back cleanly: nothing of the refused change is left to undo.
    again = provision.site_request(settings, inv, provisioned.first.bundle, limit=victim.name)  # type: ignore[attr-defined]
    converged = run_playbook(replace(again, vault=vault.run_files(settings, inv)), settings)
    assert converged.ok, tail_stdout(converged, 60)


PACK_NFT = """
import ipaddress, json, subprocess, sys, time
sys.path.insert(0, "/opt/sentry/current")
from sentry_agent.ban import NftBanner
from sentry_agent.blocklist import NftBlocklist
from sentry_agent.packs import BlockEntry
nft = NftBlocklist()
net = ipaddress.ip_network("203.0.113.0/24")
if sys.argv[1] == "add":
    nft.apply([BlockEntry(net, time.time() + 600)], [], time.time())
    NftBanner()(ipaddress.ip_address("203.0.113.9"), 60)  # inside the network: already blocked, no error
else:
    nft.apply([], [net], time.time())
out = subprocess.run(["nft", "-j", "list", "set", "inet", "sentry", "banned_v4"], capture_output=True, check=True)
print(json.dumps([i["set"] for i in json.loads(out.stdout)["nftables"] if "set" in i][0]))
"""


def test_a_pack_blocklist_network_enters_and_leaves_the_ban_set_and_fail2ban_still_bans(
    provisioned: Provisioned,
) -> None:
    import json

    env = provisioned.env
    host = env.hosts()[1]
    run = f"python3 - {{}} <<'EOF'\n{PACK_NFT}\nEOF"
    jails = env.ssh(host, "fail2ban-client status")
    jail = "sentry-game" if "sentry-game" in jails else "sshd"
    banned_by_fail2ban = "198.51.100.99"
    try:
        added = json.loads(env.ssh(host, run.format("add")))
        assert "interval" in added["flags"] and "timeout" in added["flags"], added
        networks = [e["elem"] for e in added.get("elem", []) if isinstance(e.get("elem", {}).get("val"), dict)]
        (entry,) = [e for e in networks if e["val"] == {"prefix": {"addr": "203.0.113.0", "len": 24}}]
        assert 500 < entry["timeout"] <= 600, entry
        # fail2ban's action (nft add element of one address) still works on an interval set.
        env.ssh(host, f"fail2ban-client set {jail} banip {banned_by_fail2ban}")
        listed = env.ssh(host, "nft list set inet sentry banned_v4")
        assert banned_by_fail2ban in listed, listed
        removed = json.loads(env.ssh(host, run.format("remove")))
        assert "203.0.113.0/24" not in json.dumps(removed) and '"203.0.113.0"' not in json.dumps(removed), removed
        assert banned_by_fail2ban in json.dumps(removed)  # the pack's removal leaves other bans alone
    finally:
        env.ssh(host, f"fail2ban-client set {jail} unbanip {banned_by_fail2ban}", check=False)
