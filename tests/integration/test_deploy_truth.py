"""A converge repairs what drifted live, not only what differs on disk: a rate-limit rule deleted from the loaded
nftables table, a stopped and disabled fail2ban, an sshd setting changed and reloaded. The check-mode converge
reports each one; the real converge brings each one back. (Sysctl values: every managed key is read-only inside
the lab's systemd-nspawn hosts, so the role skips them with the reason and this test cannot break one; the role
compares the live values with the drop-in and a dry run reports the drift where keys are writable.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrator import provision
from orchestrator.ledger import Ledger
from orchestrator.runner import RunResult, tail_stdout

from .conftest import Provisioned

pytestmark = pytest.mark.lab


def changed_tasks(run: RunResult, host: str) -> list[str]:
    """The tasks that reported a change on ``host``, from the run's own job events."""
    found = []
    for path in sorted((run.artifact_dir / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-")[0])):
        event = json.loads(Path(path).read_text())
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and data.get("host") == host and (data.get("res") or {}).get("changed"):
            found.append(str(data.get("task")))
    return found


def test_converge_repairs_live_drift_and_dry_run_reports_it(provisioned: Provisioned) -> None:
    env = provisioned.env
    victim = next(h for h in env.hosts() if provisioned.tiers[h.name] == "professional")
    listing = "nft list chain inet sentry input | grep -c game_tcp"
    rules_before = int(env.ssh(victim, listing).strip())
    assert rules_before > 0
    handle = env.ssh(victim, "nft -a list chain inet sentry input | grep game_tcp | head -n 1").rsplit("handle", 1)[1]
    env.ssh(victim, f"nft delete rule inet sentry input handle {handle.strip()}")
    env.ssh(victim, "systemctl disable --now fail2ban")
    env.ssh(victim, "sed -i 's/^MaxAuthTries .*/MaxAuthTries 6/I' /etc/ssh/sshd_config.d/50-sentry.conf")
    env.ssh(victim, "systemctl reload ssh")
    deadline = time.monotonic() + 30
    while (effective := env.ssh(victim, "sshd -T", check=False)) == "":  # sshd re-executes itself on reload
        assert time.monotonic() < deadline, "sshd did not come back after its reload"
        time.sleep(0.5)
    assert "maxauthtries 6" in effective
    with Ledger.open(env.settings.db_url, env.settings.home) as ledger:
        check = provision.provision(env.settings, provisioned.client, ledger, limit=victim.name, dry_run=True)
        assert check.run is not None and check.ok, tail_stdout(check.run, 80) if check.run else check.preflight
        reported = changed_tasks(check.run, victim.name)
        assert int(env.ssh(victim, listing).strip()) == rules_before - 1, "check mode changed the firewall"
        fixed = provision.provision(env.settings, provisioned.client, ledger, limit=victim.name)
        assert fixed.run is not None and fixed.ok, tail_stdout(fixed.run, 80) if fixed.run else fixed.preflight
    joined = "\n".join(reported)
    for task in (
        "Report the ruleset change that a real run would apply",
        "Enable and start fail2ban",
        "Write the sshd hardening drop-in",
    ):
        assert task in joined, f"the dry run did not report {task!r}: {reported}"
    assert int(env.ssh(victim, listing).strip()) == rules_before
    assert env.ssh(victim, "systemctl is-active fail2ban; systemctl is-enabled fail2ban").split() == [
        "active",
        "enabled",
    ]
    assert "maxauthtries 3" in env.ssh(victim, "sshd -T")


def test_lab_ping_is_recorded_in_the_ledger(provisioned: Provisioned) -> None:
    import os
    import subprocess
    import sys

    env = provisioned.env
    cli_env = {**os.environ, "SENTRY_HOME": str(env.settings.home), "SENTRY_INVENTORIES": str(env.settings.inventories)}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "lab", "ping", "--name", env.lab.name],
        capture_output=True, text=True, env=cli_env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Ledger.open(env.settings.db_url, env.settings.home) as ledger:
        runs = ledger.runs(kind="ping", limit=5)
    assert runs and runs[0].status == "succeeded"
    assert sorted(runs[0].host_results()) == sorted(h.name for h in env.hosts())
