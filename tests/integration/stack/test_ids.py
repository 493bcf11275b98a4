"""sentry_ids on converged lab hosts (tiers with fail2ban only)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _only_with_ids(stack_inventory):
    if not stack_inventory.tier["components"]["ids"]:
        pytest.skip(f"tier {stack_inventory.group_vars['sentry_tier']} has no fail2ban")


def test_fail2ban_runs_the_sentry_jails(stack_host):
    assert stack_host.service("fail2ban").is_running
    assert stack_host.service("fail2ban").is_enabled
    status = stack_host.check_output("fail2ban-client status")
    assert "sshd" in status and "sentry-game" in status


def test_fail2ban_config_is_valid(stack_host):
    assert stack_host.run("fail2ban-client --test").rc == 0


def test_jails_ban_into_the_firewall_sets(stack_host, stack_inventory):
    jail = stack_host.file("/etc/fail2ban/jail.d/sentry.local").content_string
    assert "banaction = sentry-nftables" in jail
    ignore = next(line for line in jail.splitlines() if line.startswith("ignoreip"))
    for net in ["127.0.0.1/8", "::1", *stack_inventory.group_vars["sentry_mgmt_networks"]]:
        assert net in ignore.split()
    assert f"maxretry = {stack_inventory.tier['fail2ban']['maxretry']}" in jail
    action = stack_host.file("/etc/fail2ban/action.d/sentry-nftables.conf").content_string
    assert "actionban = nft add element <nft_family> <nft_table> <addr_set>" in action
    assert "nft_table = sentry" in action
    assert "addr_set = banned_v4" in action and "addr_set = banned_v6" in action


def test_sshd_jail_reads_the_journal_of_debians_unit(stack_host):
    status = stack_host.check_output("fail2ban-client status sshd")
    assert "_SYSTEMD_UNIT=ssh.service" in status


def test_game_log_exists_for_the_jail(stack_host):
    assert stack_host.file("/var/log/sentry-game/login.log").is_file
