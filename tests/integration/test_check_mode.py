"""Check mode is honest on a fresh host and on a drifted one: `provision --dry-run` reports changes and changes
nothing. "Nothing" is measured, not assumed: the loaded nftables ruleset, every unit's state and enablement,
users and groups, the hardened sysctl keys, and every file, link and folder under /etc and /opt (content, mode,
owner, mtime) are the same before and after the dry run."""

from __future__ import annotations

import difflib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from orchestrator import provision
from orchestrator.lab.manager import Lab
from orchestrator.lab.state import HostState
from orchestrator.ledger import Ledger
from orchestrator.runner import tail_stdout
from orchestrator.settings import Settings

from .conftest import changed_tasks, onboard

pytestmark = pytest.mark.lab

# What the host is, as far as a converge could change it. Volatile lines are left out: per-login units (every SSH
# login starts one), set elements' remaining time, and runtime-only paths.
SYSCTL_KEYS = (
    r"^(net\.ipv4\.(conf\.(all|default)\.|tcp_syncookies|icmp_)|net\.ipv6\.conf\.(all|default)\."
    r"|kernel\.(kptr_restrict|dmesg_restrict|yama|randomize_va_space)|fs\.(protected_|suid_dumpable))"
)
SNAPSHOT = (
    f"SYSCTL_KEYS='{SYSCTL_KEYS}'\n"
    + r"""
set -e
echo '## nftables'
nft -s list ruleset | sed -E 's/ expires [0-9hms.]+//g'
echo '## units'
systemctl list-units --all --no-legend --plain --type=service,socket,timer,path \
  | awk '{print $1, $2, $3, $4}' | grep -v -E '^(user@|user-runtime-dir@|session-)' | sort
echo '## unit files'
systemctl list-unit-files --no-legend --plain | awk '{print $1, $2}' | sort
echo '## users and groups'
getent passwd | sort
getent group | sort
echo '## sysctl'
sysctl -a 2>/dev/null | grep -E "$SYSCTL_KEYS" | sort
echo '## paths'
find /etc /opt -xdev -printf '%y %p %m %u:%g %T@ %l\n' | sort
echo '## content'
find /etc /opt -xdev -type f -print0 | sort -z | xargs -0 sha256sum
"""
)


@dataclass
class Fresh:
    settings: Settings
    lab: Lab
    host: HostState
    client: str = "fresh"

    def ssh(self, command: str) -> str:
        proc = subprocess.run(
            [*self.lab.ssh_argv(self.host), command], capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, f"{command[:80]!r}: {proc.stderr}"
        return proc.stdout

    def snapshot(self) -> str:
        return self.ssh(SNAPSHOT)

    def provision(self, dry_run: bool) -> provision.ProvisionResult:
        with Ledger.open(self.settings.db_url, self.settings.home) as ledger:
            return provision.provision(self.settings, self.client, ledger, dry_run=dry_run)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, lab_cache: str) -> Iterator[Fresh]:
    """One host that nothing has touched yet, onboarded (inventory and pinned key) but never provisioned."""
    root = tmp_path_factory.mktemp("fresh")
    settings = Settings.from_env(home=root / "home", inventories=root / "inv")
    lab = Lab(settings, "cm")
    lab.up(1, lambda _m: None)
    try:
        state = lab.state()
        assert state is not None
        host = next(iter(state.hosts.values()))
        with Ledger.open(settings.db_url, settings.home) as ledger:
            onboard(settings, lab, "fresh", [host.name], "enterprise", ledger, game_ports=["7777"])
        yield Fresh(settings, lab, host)
    finally:
        lab.down(lambda _m: None)


def unchanged(before: str, after: str) -> str:
    return "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm=""))


def test_dry_run_on_a_fresh_host_reports_the_stack_and_changes_nothing(fresh: Fresh) -> None:
    before = fresh.snapshot()
    check = fresh.provision(dry_run=True)
    assert check.run is not None and check.ok, tail_stdout(check.run, 80) if check.run else check.preflight
    assert check.run.changed_total > 10, changed_tasks(check.run)
    after = fresh.snapshot()
    assert after == before, unchanged(before, after)


def test_dry_run_on_a_drifted_host_reports_the_drift_and_changes_nothing(fresh: Fresh) -> None:
    done = fresh.provision(dry_run=False)
    assert done.ok, tail_stdout(done.run, 80) if done.run else done.preflight
    handle = fresh.ssh("nft -a list chain inet sentry input | grep game_tcp | head -n 1").rsplit("handle", 1)[1]
    fresh.ssh(f"nft delete rule inet sentry input handle {handle.strip()}")
    fresh.ssh("systemctl disable --now fail2ban")
    fresh.ssh("sed -i 's/^MaxAuthTries .*/MaxAuthTries 6/I' /etc/ssh/sshd_config.d/50-sentry.conf")
    fresh.ssh("chmod 0644 /etc/sentry/agent.json")
    before = fresh.snapshot()
    check = fresh.provision(dry_run=True)
    assert check.run is not None and check.ok, tail_stdout(check.run, 80) if check.run else check.preflight
    reported = changed_tasks(check.run)
    assert len(reported) >= 3, reported
    after = fresh.snapshot()
    assert after == before, unchanged(before, after)


def test_snapshot_sees_a_change(fresh: Fresh) -> None:
    """The comparison can fail: a one-byte edit under /etc shows up in the snapshot."""
    before = fresh.snapshot()
    fresh.ssh("echo '# touched' >> /etc/motd")
    try:
        assert fresh.snapshot() != before
    finally:
        fresh.ssh("sed -i '$ d' /etc/motd")
