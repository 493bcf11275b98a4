"""Provisioning the protection stack on real hosts: converge, idempotence, honest check mode, the ledger's
record, tiers that differ, and a secret that reaches the hosts and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import provision
from orchestrator.ledger import Ledger
from orchestrator.runner import tail_stdout

from .conftest import Provisioned, changed_tasks

pytestmark = pytest.mark.lab


def converge(p: Provisioned, **kw: object) -> provision.ProvisionResult:
    with Ledger.open(p.env.settings.db_url, p.env.settings.home) as ledger:
        return provision.provision(p.env.settings, p.client, ledger, **kw)  # type: ignore[arg-type]


def test_cold_converge_changed_every_host(provisioned: Provisioned) -> None:
    run = provisioned.first.run  # type: ignore[attr-defined]
    assert run is not None and run.ok
    assert all(o.changed > 0 for o in run.hosts.values()), run.to_json()


def test_second_run_changes_nothing(provisioned: Provisioned) -> None:
    # The session's hosts are shared: tests before this one may have changed them on purpose (drift, wiring, ports).
    # One converge brings them back; the guarantee is about the run after it.
    settled = converge(provisioned)
    assert settled.run is not None and settled.ok, tail_stdout(settled.run) if settled.run else settled.preflight
    again = converge(provisioned)
    assert again.run is not None and again.ok, tail_stdout(again.run) if again.run else again.preflight
    changed = {h: o.changed for h, o in again.run.hosts.items()}
    assert changed == dict.fromkeys(provisioned.tiers, 0), changed_tasks(again.run)


def test_check_mode_on_converged_hosts_is_honest_and_changes_nothing(provisioned: Provisioned) -> None:
    env = provisioned.env
    for h in env.hosts():
        env.ssh(h, "touch /run/sentry-test-marker")
    check = converge(provisioned, dry_run=True)
    assert check.run is not None and check.ok, tail_stdout(check.run) if check.run else check.preflight
    changed = {h: o.changed for h, o in check.run.hosts.items()}
    assert changed == dict.fromkeys(provisioned.tiers, 0), changed_tasks(check.run)
    for h in env.hosts():
        touched = env.ssh(h, "find /etc /opt/sentry -newer /run/sentry-test-marker -not -type d 2>/dev/null")
        assert touched.strip() == "", f"{h.name}: check mode wrote {touched}"


def test_tiers_decide_the_components(provisioned: Provisioned) -> None:
    env = provisioned.env
    for h in env.hosts():
        fail2ban = env.ssh(h, "systemctl is-active fail2ban", check=False).strip()
        expected = "inactive" if provisioned.tiers[h.name] == "essentials" else "active"
        if expected == "inactive":
            assert fail2ban in ("inactive", "unknown"), f"{h.name}: fail2ban {fail2ban}"
        else:
            assert fail2ban == "active", f"{h.name}: fail2ban {fail2ban}"
        assert env.ssh(h, "systemctl is-active sentry-agent").strip() == "active"
        assert provisioned.tiers[h.name] in env.ssh(h, "cat /etc/ansible/facts.d/sentry.fact")


def test_ledger_records_each_hosts_release(provisioned: Provisioned) -> None:
    bundle = provisioned.first.bundle  # type: ignore[attr-defined]
    with Ledger.open(provisioned.env.settings.db_url, provisioned.env.settings.home) as ledger:
        releases = {r.host: r for r in ledger.host_releases(provisioned.client)}
        runs = ledger.runs(client=provisioned.client, kind="provision")
        assert ledger.verify().ok
    assert set(releases) == set(provisioned.tiers)
    assert {r.release_version for r in releases.values()} == {bundle.version}
    assert runs and all(h.status in ("ok", "changed") for h in runs[-1].hosts)


def test_canary_secret_reaches_the_hosts_and_nothing_else(provisioned: Provisioned, tmp_path: Path) -> None:
    env = provisioned.env
    # The most talkative runs there are: highest verbosity, and check + diff mode.
    cli_env = {
        **os.environ,
        "SENTRY_HOME": str(env.settings.home),
        "SENTRY_INVENTORIES": str(env.settings.inventories),
    }
    outputs = []
    for extra in (["--dry-run"], []):
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "-vvvvv", "provision", "--client", provisioned.client, *extra],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs += [proc.stdout, proc.stderr]
    assert not any(provisioned.canary in o for o in outputs)
    # Everything the tool wrote: the state dir (ledger, runs, logs, keys) and the inventories. The lab's host
    # roots also live under the state dir; they are the hosts, where the secret belongs.
    written = [p for p in env.settings.home.iterdir() if p != env.settings.lab_dir] + [env.settings.inventories]
    assert any(p.name == "runs" for p in written) and any(p.name == "ledger.db" for p in written)
    leaks = subprocess.run(
        ["grep", "-rla", provisioned.canary, *map(str, written)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert leaks.stdout == "", f"canary found in: {leaks.stdout}"
    for h in env.hosts():
        conf = env.ssh(
            h, "stat -c %a /etc/sentry/agent.json; grep -c " + provisioned.canary + " /etc/sentry/agent.json"
        )
        assert conf.split() == ["600", "1"], f"{h.name}: {conf}"
