"""sentry_baseline on converged lab hosts: account, sudoers, sshd, sysctl, banner, local fact."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.lab


def test_service_account_is_a_locked_system_account(stack_host):
    user = stack_host.user("sentry")
    assert user.exists
    assert user.uid < 1000, "a system account"
    assert user.shell == "/usr/sbin/nologin"
    assert "adm" in user.groups
    assert user.password.startswith(("!", "*")), "no usable password"


def test_sudoers_dropin_is_valid_and_narrow(stack_host):
    f = stack_host.file("/etc/sudoers.d/sentry")
    assert f.exists and f.user == "root" and f.mode == 0o440
    assert stack_host.run("visudo -cf /etc/sudoers.d/sentry").rc == 0
    rules = [line for line in f.content_string.splitlines() if line.startswith("sentry ")]
    assert rules, "no rule for the service account"
    for rule in rules:
        command = rule.split("NOPASSWD:", 1)[1].strip()
        assert command.startswith("/"), rule
        assert "ALL" not in command.split() and "*" not in command, rule


@pytest.mark.parametrize(
    ("keyword", "expected"),
    [
        ("passwordauthentication", "no"),
        ("kbdinteractiveauthentication", "no"),
        ("permitrootlogin", "without-password"),
        ("x11forwarding", "no"),
        ("maxauthtries", "3"),
        ("logingracetime", "30"),
        ("banner", "/etc/issue.net"),
    ],
)
def test_sshd_effective_config_is_hardened(stack_host, keyword, expected):
    effective = dict(line.split(" ", 1) for line in stack_host.check_output("sshd -T").splitlines() if " " in line)
    assert effective[keyword] == expected


def test_sshd_uses_only_modern_algorithms(stack_host):
    effective = dict(line.split(" ", 1) for line in stack_host.check_output("sshd -T").splitlines() if " " in line)
    assert not [c for c in effective["ciphers"].split(",") if "cbc" in c or "3des" in c]
    assert not [m for m in effective["macs"].split(",") if "sha1" in m or "md5" in m or "etm" not in m]
    assert not [k for k in effective["kexalgorithms"].split(",") if "sha1" in k or "nistp" in k]


def test_sshd_dropin_never_touches_host_keys(stack_host):
    content = stack_host.file("/etc/ssh/sshd_config.d/50-sentry.conf").content_string.lower()
    assert "hostkey " not in content
    assert stack_host.service("ssh").is_running


def test_running_sshd_refuses_passwords(stack_host):
    # What the daemon offers, not just what its files say: the methods after a failed "none" auth.
    # (ssh exits 255 on the refused login; testinfra's ssh backend reads 255 as its own failure, hence "|| true")
    out = stack_host.run(
        "ssh -v -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o PubkeyAuthentication=no -o ConnectTimeout=5 nobody@127.0.0.1 true 2>&1 || true"
    )
    offered = [line for line in out.stdout.splitlines() if "Authentications that can continue" in line]
    assert offered, out.stdout
    assert offered[0].rsplit(":", 1)[1].strip() == "publickey"


def test_banner_names_support_contact_and_hours(stack_host, stack_inventory):
    banner = stack_host.file("/etc/issue.net").content_string
    assert stack_inventory.group_vars["sentry_support_contact"] in banner
    assert stack_inventory.tier["support_hours"] in banner
    assert stack_inventory.group_vars["sentry_client"] in banner


def test_sysctl_dropin_lists_every_managed_key(stack_host):
    f = stack_host.file("/etc/sysctl.d/60-sentry.conf")
    assert f.exists and f.mode == 0o644
    content = f.content_string
    for key in ("net.ipv4.tcp_syncookies", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.all.accept_redirects"):
        assert key in content, f"{key} neither applied nor listed as skipped"
    applied = [line.split(" = ") for line in content.splitlines() if line and not line.startswith("#")]
    for key, value in applied:
        assert stack_host.check_output(f"sysctl -n {key}").split() == value.split(), key


def test_local_fact_records_the_deployment(stack_host, stack_inventory):
    f = stack_host.file("/etc/ansible/facts.d/sentry.fact")
    assert f.mode == 0o644, "an executable fact would be run instead of read"
    fact = json.loads(f.content_string)
    assert fact["client"] == stack_inventory.group_vars["sentry_client"]
    assert fact["tier"] == stack_inventory.group_vars["sentry_tier"]
    assert fact["updated_by"] == "sentryctl"
    assert set(fact) == {"client", "tier", "stack_version", "release", "track", "updated_by"}
    current = stack_host.file("/opt/sentry/current/VERSION")
    if current.exists:
        assert fact["release"] == current.content_string.strip()
