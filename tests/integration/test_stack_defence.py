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
