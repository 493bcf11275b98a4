"""The onboarding engineer's story on real lab hosts, through the real CLI: new -> pin -> preflight -> exec,
with every kind of bad input refused cleanly and every key change stopping work."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.lab.state import HostState

from .conftest import LabEnv

pytestmark = pytest.mark.lab


def cli(env: LabEnv, *args: str, inventories: Path | None = None) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "SENTRY_HOME": str(env.settings.home),
        "SENTRY_INVENTORIES": str(inventories or env.settings.inventories),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=600,
        check=False,
    )


def new_client(
    env: LabEnv, name: str, hosts: list[HostState], *extra: str, inventories: Path | None = None
) -> subprocess.CompletedProcess[str]:
    state = env.lab.state()
    assert state is not None
    args = ["client", "new", name, "--tier", "professional", "--mgmt-network", state.subnet, "--key", str(env.lab.key)]
    for h in hosts:
        args += ["--host", f"{h.name.replace('t-', 'g')}={h.address}"]
    return cli(env, *args, *extra, inventories=inventories)


@pytest.fixture(scope="module")
def acme(lab_env: LabEnv) -> str:
    proc = new_client(
        lab_env, "acme", lab_env.hosts(), "--game-port", "7777", "--window", "Mon-Fri 02:00-05:00 Europe/Madrid"
    )
    assert proc.returncode == 0, proc.stderr
    pinned = cli(lab_env, "hosts", "pin", "--client", "acme", "--yes")
    assert pinned.returncode == 0, pinned.stderr
    return "acme"


def test_pin_shows_fingerprints_and_needs_confirmation(lab_env: LabEnv, tmp_path: Path) -> None:
    inv_dir = tmp_path / "inv"
    assert new_client(lab_env, "beta", lab_env.hosts()[:1], inventories=inv_dir).returncode == 0
    refused = cli(lab_env, "hosts", "pin", "--client", "beta", inventories=inv_dir)
    assert refused.returncode == 1 and "needs confirmation" in refused.stderr
    assert not (inv_dir / "beta/known_hosts").exists()
    assert "SHA256:" in refused.stdout


def test_onboarded_client_preflights_and_runs_commands(lab_env: LabEnv, acme: str) -> None:
    pre = cli(lab_env, "preflight", "--client", acme, "--json")
    assert pre.returncode == 0, pre.stdout + pre.stderr
    report = json.loads(pre.stdout)
    assert report["ok"] and len(report["hosts"]) == 3
    assert {c["id"] for c in report["hosts"][0]["checks"]} == {
        "ssh",
        "python",
        "become",
        "disk",
        "clock",
        "os",
        "systemd",
    }
    ran = cli(lab_env, "exec", "--client", acme, "--json", "--", "hostname")
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert sorted(h["stdout"].strip() for h in out["hosts"]) == sorted(h.name for h in lab_env.hosts())
    runs = json.loads(cli(lab_env, "ledger", "runs", "--client", acme, "--kind", "exec", "--json").stdout)
    assert runs[0]["uid"] == out["run"] and runs[0]["summary"]["command"] == "hostname"
    assert {h["status"] for h in runs[0]["hosts"]} == {"ok"}


def test_failing_command_is_recorded_per_host(lab_env: LabEnv, acme: str) -> None:
    first = lab_env.hosts()[0].name.replace("t-", "g")
    ran = cli(lab_env, "exec", "--client", acme, "--json", "--", f"test $(hostname) != {lab_env.hosts()[0].name}")
    assert ran.returncode == 1
    statuses = {h["host"]: (h["status"], h["rc"]) for h in json.loads(ran.stdout)["hosts"]}
    assert statuses[first] == ("failed", 1)
    assert sum(1 for s, _ in statuses.values() if s == "ok") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "platinum"], "unknown tier 'platinum'"),
        (["--host", "dup=192.0.2.50"], "duplicate host name"),
        (["--host", "x=300.1.2.3"], "invalid host address"),
        (["--window", "nights"], "malformed maintenance window"),
    ],
)
def test_bad_input_one_line_exit_1_nothing_written(
    lab_env: LabEnv, tmp_path: Path, args: list[str], message: str
) -> None:
    inv_dir = tmp_path / "inv"
    base = ["client", "new", "gamma", "--tier", "essentials", "--mgmt-network", "10.0.0.0/8", "--host", "dup=192.0.2.9"]
    proc = cli(lab_env, *base, *args, inventories=inv_dir)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not inv_dir.exists() or not any(inv_dir.iterdir())
    clients = json.loads(cli(lab_env, "ledger", "log", "--client", "gamma", "--json").stdout)
    assert clients == []


def test_existing_client_is_refused(lab_env: LabEnv, acme: str) -> None:
    hosts_yml = (lab_env.settings.inventories / acme / "hosts.yml").read_text()
    proc = new_client(lab_env, acme, lab_env.hosts()[:1])
    assert proc.returncode == 1 and "already exists" in proc.stderr
    assert (lab_env.settings.inventories / acme / "hosts.yml").read_text() == hosts_yml


def test_changed_host_key_stops_all_work_before_any_command(lab_env: LabEnv, acme: str, tmp_path: Path) -> None:
    first, second = lab_env.hosts()[:2]
    known = lab_env.settings.inventories / acme / "known_hosts"
    original = known.read_text()
    marker = f"/var/tmp/should-not-exist-{os.getpid()}"
    try:
        known.write_text(original.replace(first.host_key_pub.split()[1], second.host_key_pub.split()[1]))
        ran = cli(lab_env, "exec", "--client", acme, "--limit", "g1", "--json", "--", f"touch {marker}")
        assert ran.returncode == 1
        host = json.loads(ran.stdout)["hosts"][0]
        assert host["status"] == "unreachable" and host["rc"] is None
        assert "host key of g1 changed: pinned SHA256:" in host["error"] and ", presented SHA256:" in host["error"]
        pre = cli(lab_env, "preflight", "--client", acme, "--limit", "g1")
        assert pre.returncode == 1 and "host key of g1 changed" in pre.stdout
    finally:
        known.write_text(original)
    assert lab_env.ssh(first, f"test -e {marker} && echo yes || echo no").strip() == "no"


def test_unreachable_and_tarpit_hosts_fail_within_the_timeout(lab_env: LabEnv, tmp_path: Path) -> None:
    state = lab_env.lab.state()
    assert state is not None
    tarpit_host = lab_env.hosts()[2]
    # Accepts TCP, never says a word: the classic way to hang an SSH client without timeouts.
    lab_env.ssh(
        tarpit_host,
        'systemd-run --unit=sentry-test-tarpit python3 -c "import socket,time; s=socket.socket(); '
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 2222)); s.listen(8); "
        'c=[s.accept() for _ in range(8)]; time.sleep(600)"',
    )
    try:
        inv_dir = tmp_path / "inv"
        silent = str(state.network.network_address + 200)  # in the lab subnet, no host behind it
        proc = cli(
            lab_env,
            "client", "new", "delta", "--tier", "essentials", "--mgmt-network", state.subnet,
            "--key", str(lab_env.lab.key),
            "--host", f"good={lab_env.hosts()[0].address}",
            "--host", f"ghost={silent}",
            "--host", f"tarpit={tarpit_host.address}:2222",
            inventories=inv_dir,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        (inv_dir / "delta/known_hosts").write_text(f"{lab_env.hosts()[0].address} {lab_env.hosts()[0].host_key_pub}\n")
        started = time.monotonic()
        pre = cli(lab_env, "preflight", "--client", "delta", "--timeout", "3", "--json", inventories=inv_dir)
        elapsed = time.monotonic() - started
        assert pre.returncode == 1
        hosts = {h["host"]: h for h in json.loads(pre.stdout)["hosts"]}
        assert hosts["good"]["ok"]
        assert not hosts["ghost"]["ok"] and hosts["ghost"]["seconds"] < 6
        assert not hosts["tarpit"]["ok"] and hosts["tarpit"]["seconds"] < 8
        assert "SSH banner" in hosts["tarpit"]["error"] or "timed out" in hosts["tarpit"]["error"]
        assert elapsed < 30
    finally:
        lab_env.ssh(tarpit_host, "systemctl stop sentry-test-tarpit", check=False)


def test_ledger_verify_names_an_edited_event(lab_env: LabEnv, acme: str, tmp_path: Path) -> None:
    ok = cli(lab_env, "ledger", "verify")
    assert ok.returncode == 0, ok.stderr
    db = lab_env.settings.home / "ledger.db"
    copy_home = tmp_path / "home"
    copy_home.mkdir()
    # Tamper with a copy so the shared ledger stays intact for other tests.
    with sqlite3.connect(db) as src, sqlite3.connect(copy_home / "ledger.db") as dst:
        src.backup(dst)
    with sqlite3.connect(copy_home / "ledger.db") as conn:
        conn.execute("UPDATE events SET payload = replace(payload, 'professional', 'enterprise') WHERE seq = 1")
    env = {**os.environ, "SENTRY_HOME": str(copy_home)}
    bad = subprocess.run(
        [sys.executable, "-m", "orchestrator", "ledger", "verify"], capture_output=True, text=True, env=env, check=False
    )
    assert bad.returncode == 1
    assert "event 1 (client.created) was altered" in bad.stderr
