"""sentry_agent on converged lab hosts: release layout, service sandbox, health, detection end to end."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.lab

OFFENDER_V4 = "203.0.113.99"  # TEST-NET-3: written into the game log only, no traffic is sent to it
CAP_NET_ADMIN = 1 << 12


def _health(host) -> dict:
    out = host.check_output(
        'python3 -c \'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9110/healthz", '
        "timeout=5).read().decode())'"
    )
    return json.loads(out)


def test_current_release_is_an_atomic_symlink(stack_host):
    current = stack_host.file("/opt/sentry/current")
    assert current.is_symlink
    target = current.linked_to
    assert target.startswith("/opt/sentry/releases/")
    version = stack_host.file(f"{target}/VERSION").content_string.strip()
    assert target.endswith(f"/{version}")
    assert stack_host.file(f"{target}/.bundle.sha256").exists
    previous = stack_host.file("/opt/sentry/previous")
    if previous.exists:
        assert previous.is_symlink and stack_host.file(previous.linked_to).is_directory


def test_agent_reports_healthy_on_the_current_release(stack_host):
    version = stack_host.file("/opt/sentry/current/VERSION").content_string.strip()
    health = _health(stack_host)
    assert health["status"] == "ok", health
    assert health["version"] == version


def test_agent_runs_unprivileged_with_only_cap_net_admin(stack_host):
    service = stack_host.service("sentry-agent")
    assert service.is_running and service.is_enabled
    pid = stack_host.check_output("systemctl show -p MainPID --value sentry-agent")
    status = dict(line.split(":", 1) for line in stack_host.file(f"/proc/{pid}/status").content_string.splitlines())
    assert status["Uid"].split()[0] == str(stack_host.user("sentry").uid)
    assert int(status["CapEff"].strip(), 16) == CAP_NET_ADMIN
    assert int(status["CapBnd"].strip(), 16) == CAP_NET_ADMIN
    assert status["NoNewPrivs"].strip() == "1"


def test_agent_config_matches_the_tier(stack_host, stack_inventory):
    f = stack_host.file("/etc/sentry/agent.json")
    assert f.user == "sentry" and f.group == "sentry" and f.mode == 0o600
    config = json.loads(f.content_string)
    assert config["client"] == stack_inventory.group_vars["sentry_client"]
    assert config["tier"] == stack_inventory.group_vars["sentry_tier"]
    assert config["heartbeat_interval_seconds"] == stack_inventory.tier["heartbeat_interval_seconds"]
    assert config["rule_overrides"] == stack_inventory.tier["agent_rule_overrides"]
    assert config["never_ban"] == stack_inventory.group_vars["sentry_mgmt_networks"]
    assert (config["nft_table_family"], config["nft_table"]) == ("inet", "sentry")
    check = stack_host.run(
        "env PYTHONPATH=/opt/sentry/current python3 -B -m sentry_agent --config /etc/sentry/agent.json --check-config"
    )
    assert check.rc == 0, check.stderr


def test_failed_logins_get_the_offender_banned(stack_host, stack_inventory):
    """Failed logins in the game log end up as a timed element of banned_v4 (agent and/or fail2ban)."""
    threshold = stack_inventory.tier["agent_rule_overrides"]["game-bruteforce"]["threshold"]
    log = "/var/log/sentry-game/login.log"
    stack_host.check_output(f"mkdir -p /var/log/sentry-game && touch {log}")
    time.sleep(1)  # let the agent see the file before it grows
    lines = "\\n".join(f"LOGIN FAILED user=test{i} ip={OFFENDER_V4}" for i in range(threshold + 2))
    stack_host.check_output(f"printf '{lines}\\n' >> {log}")
    try:
        deadline = time.monotonic() + 20
        banned = ""
        while time.monotonic() < deadline:
            banned = stack_host.check_output("nft list set inet sentry banned_v4")
            if OFFENDER_V4 in banned:
                break
            time.sleep(1)
        assert OFFENDER_V4 in banned, banned
        assert "expires" in banned.split(OFFENDER_V4, 1)[1].split(",")[0], "a ban carries a timeout"
    finally:
        if stack_inventory.tier["components"]["ids"]:
            stack_host.run(f"fail2ban-client unban {OFFENDER_V4}")
        stack_host.run(f"nft delete element inet sentry banned_v4 '{{ {OFFENDER_V4} }}'")
