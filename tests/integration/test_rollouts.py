"""Releases and staged rollouts on real hosts, with fault injection: a good hotfix goes canary -> waves; a bad one
is stopped at the canary and rolled back; an unreachable host halts its wave; a killed orchestrator resumes;
one rollout per client; tampered bundles and downgrades are refused; feature releases wait for training;
maintenance windows defer all but 24/7 clients."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from orchestrator import provision, releases, sshmux
from orchestrator.lab.manager import Lab
from orchestrator.lab.state import HostState
from orchestrator.ledger import Ledger
from orchestrator.runner import run_processes
from orchestrator.settings import Settings

from .conftest import provisioned_lab

pytestmark = pytest.mark.lab

AGENT = Path(__file__).resolve().parents[2] / "agent"
FAST_TRACKS = {
    "hotfix": {
        "waves": [
            {"name": "canary", "hosts_per_client": 1},
            {"name": "second", "percent": 50},
            {"name": "rest", "percent": 100},
        ],
        "soak_seconds": 0,
        "health_timeout_seconds": 30,
        "failure_budget": {"max_failed": 0},
    },
    "feature": {"soak_seconds": 0, "health_timeout_seconds": 30},
}


@dataclass
class Fleet:
    settings: Settings
    lab: Lab
    hosts: dict[str, HostState]  # lab host name -> state
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, env=self.env,
            timeout=timeout, check=False,
        )  # fmt: skip

    def ssh(self, name: str, command: str, check: bool = True) -> str:
        proc = subprocess.run(
            [*self.lab.ssh_argv(self.hosts[name]), command], capture_output=True, text=True, timeout=60, check=False
        )
        if check:
            assert proc.returncode == 0, f"{name}: {command}: {proc.stderr}"
        return proc.stdout

    def ledger(self) -> Ledger:
        return Ledger.open(self.settings.db_url, self.settings.home)

    def running(self, name: str) -> str:
        return self.ssh(name, "readlink /opt/sentry/current").strip().rsplit("/", 1)[-1]

    def set_window(self, client: str, window: str) -> None:
        path = self.settings.inventories / client / "client.yml"
        data = yaml.safe_load(path.read_text())
        data["window"] = window
        path.write_text(yaml.safe_dump(data))


def build(fleet: Fleet, version: str, **kw: object) -> releases.Release:
    return releases.build_release(AGENT, fleet.settings.home, version=version, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, lab_cache: str) -> Iterator[Fleet]:
    layout = {"alpha": (["ro-1", "ro-2", "ro-3"], "professional"), "beta": (["ro-4"], "enterprise")}
    with provisioned_lab(tmp_path_factory, "ro", 4, layout, FAST_TRACKS) as (settings, lab, hosts, env):
        yield Fleet(settings, lab, hosts, env)


def sshd_logins(fleet: Fleet) -> int:
    return sum(
        int(fleet.ssh(n, "journalctl -u ssh -q --no-pager | grep -c 'Accepted publickey' || true").strip() or 0)
        for n in fleet.hosts
    )


def test_tampered_or_unsigned_bundle_is_refused_before_any_ssh(fleet: Fleet) -> None:
    good = build(fleet, "1.0.1")
    data = bytearray(good.bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    good.bundle.write_bytes(bytes(data))
    before = sshd_logins(fleet)
    tampered = fleet.cli("rollout", "start", "1.0.1", "--all", "--yes")
    assert tampered.returncode == 1 and "signature does not match" in tampered.stderr, tampered.stderr
    unsigned = build(fleet, "1.0.2")
    unsigned.signature.unlink()
    refused = fleet.cli("rollout", "start", "1.0.2", "--all", "--yes")
    assert refused.returncode == 1 and "signature" in refused.stderr, refused.stderr
    # The counting itself logs in once per host; nothing else may have.
    assert sshd_logins(fleet) == before + len(fleet.hosts)


def test_good_hotfix_goes_canary_then_waves_to_every_host(fleet: Fleet) -> None:
    build(fleet, "1.1.0")
    plan = json.loads(fleet.cli("rollout", "plan", "1.1.0", "--all", "--json").stdout)
    assert [w["name"] for w in plan["waves"]] == ["canary", "second", "rest"]
    assert sorted(h["host"] for h in plan["waves"][0]["hosts"]) == ["ro-1", "ro-4"]  # one host per client
    for client in ("alpha", "beta"):  # masters left open by earlier steps would hide logins
        sshmux.close_masters(
            sshmux.masters_dir(fleet.settings.home, fleet.settings.inventories / client / "known_hosts")
        )
    before = sshd_logins(fleet)
    started = fleet.cli("rollout", "start", "1.1.0", "--all", "--yes")
    assert started.returncode == 0, started.stderr[-3000:]
    # One login per host for the whole rollout: the health probe and the smoke checks ride the connection the
    # wave's agent run opened (orchestrator/sshmux.py). The counting itself logs in once per host.
    assert sshd_logins(fleet) - before == 2 * len(fleet.hosts)
    assert {fleet.running(n) for n in fleet.hosts} == {"1.1.0"}
    with fleet.ledger() as ledger:
        rollout = ledger.rollouts(limit=1)[0]
        assert rollout.state == "completed"
        assert {h.status for h in rollout.hosts} == {"healthy"}
        for client in ("alpha", "beta"):
            assert {r.release_version for r in ledger.host_releases(client)} == {"1.1.0"}
        assert ledger.verify().ok


def test_downgrade_is_refused(fleet: Fleet) -> None:
    build(fleet, "1.0.5")
    plan = json.loads(fleet.cli("rollout", "plan", "1.0.5", "--all", "--json").stdout)
    assert plan["waves"] == [] and all("downgrade" in s["reason"] for s in plan["skipped"])
    started = fleet.cli("rollout", "start", "1.0.5", "--all", "--yes")
    assert started.returncode == 1 and "nothing to roll out" in started.stderr


def healthz(fleet: Fleet, name: str) -> dict[str, object]:
    body = fleet.ssh(
        name,
        "python3 -c \"import urllib.request as u;print(u.urlopen('http://127.0.0.1:9110/healthz').read().decode())\"",
    )
    data = json.loads(body)
    assert isinstance(data, dict)
    return data


def test_provision_keeps_the_release_a_rollout_brought(fleet: Fleet) -> None:
    # ro-1 runs 1.1.0 from the rollout above; the tree's own agent is another version.
    assert fleet.running("ro-1") == "1.1.0"
    check = fleet.cli("provision", "--client", "alpha", "--limit", "ro-1", "--dry-run", "--json")
    assert check.returncode == 0, check.stderr[-3000:]
    report = json.loads(check.stdout)
    assert report["releases"] == {"ro-1": "1.1.0"}
    assert report["run"]["hosts"]["ro-1"]["changed"] == 0, report  # no agent change, nothing else either
    again = fleet.cli("provision", "--client", "alpha", "--limit", "ro-1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert fleet.running("ro-1") == "1.1.0"
    health = healthz(fleet, "ro-1")
    assert health["version"] == "1.1.0" and health["status"] == "ok"
    with fleet.ledger() as ledger:
        assert next(r.release_version for r in ledger.host_releases("alpha") if r.host == "ro-1") == "1.1.0"
    # --release obeys the rollout's rules: 1.0.5 would be a downgrade, refused before anything runs.
    refused = fleet.cli("provision", "--client", "alpha", "--limit", "ro-1", "--release", "1.0.5")
    assert refused.returncode == 1 and "downgrade" in refused.stderr, refused.stderr[-2000:]


def test_bad_release_fails_at_the_canary_and_is_rolled_back(fleet: Fleet, tmp_path: Path) -> None:
    rules = json.loads((AGENT / "rules" / "rules.json").read_text())
    rules["self_test"] = "fail"
    bad_rules = tmp_path / "rules.json"
    bad_rules.write_text(json.dumps(rules))
    build(fleet, "1.2.0", rules_file=bad_rules)
    untouched = {
        n: fleet.ssh(n, "readlink /opt/sentry/current; sha256sum /etc/sentry/agent.json") for n in ("ro-2", "ro-3")
    }
    started = fleet.cli("rollout", "start", "1.2.0", "--client", "alpha", "--yes")
    assert started.returncode == 1
    assert "canary gate failed" in started.stderr and "rolled back" in started.stderr, started.stderr[-3000:]
    assert fleet.running("ro-1") == "1.1.0"
    health = json.loads(
        fleet.ssh(
            "ro-1",
            "python3 -c \"import urllib.request as u;print(u.urlopen('http://127.0.0.1:9110/healthz').read().decode())\"",
        )
    )
    assert health["status"] == "ok" and health["version"] == "1.1.0"
    for name, before in untouched.items():
        assert fleet.ssh(name, "readlink /opt/sentry/current; sha256sum /etc/sentry/agent.json") == before
        assert not fleet.ssh(name, "ls /opt/sentry/releases").count("1.2.0")
    with fleet.ledger() as ledger:
        rollout = ledger.rollouts(limit=1)[0]
        statuses = {h.host: h.status for h in rollout.hosts}
    assert rollout.state == "rolled_back"
    assert statuses["ro-1"] == "rolled_back" and statuses["ro-2"] == "pending" and statuses["ro-3"] == "pending"


def test_unreachable_host_in_wave_two_halts_and_later_waves_stay_untouched(fleet: Fleet) -> None:
    build(fleet, "1.3.0")
    fleet.ssh("ro-2", "systemd-run --on-active=40s --unit=sentry-test-ssh-back systemctl start ssh.service")
    fleet.ssh("ro-2", "systemctl stop ssh.service")
    try:
        started = fleet.cli("rollout", "start", "1.3.0", "--client", "alpha", "--yes")
    finally:
        deadline = time.monotonic() + 90
        while (
            time.monotonic() < deadline
            and subprocess.run(
                [*fleet.lab.ssh_argv(fleet.hosts["ro-2"]), "true"], capture_output=True, check=False
            ).returncode
        ):
            time.sleep(1)
    assert started.returncode == 1 and "wave second" in started.stderr, started.stderr[-3000:]
    assert fleet.running("ro-1") == "1.1.0"  # the canary got 1.3.0, and was rolled back with the wave
    assert fleet.running("ro-3") == "1.1.0"  # the last wave was never touched
    assert "1.3.0" not in fleet.ssh("ro-3", "ls /opt/sentry/releases")
    with fleet.ledger() as ledger:
        statuses = {h.host: h.status for h in ledger.rollouts(limit=1)[0].hosts}
    assert statuses["ro-2"] == "unreachable" and statuses["ro-3"] == "pending"


def test_killed_orchestrator_resumes_to_completion(fleet: Fleet) -> None:
    build(fleet, "1.4.0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "rollout", "start", "1.4.0", "--client", "alpha", "--yes"],
        env=fleet.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    uid = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with fleet.ledger() as ledger:
                latest = ledger.rollouts(limit=1)
                if latest and latest[0].release_version == "1.4.0":
                    uid = latest[0].uid
                    if any(h.wave == 1 and h.status == "updating" for h in latest[0].hosts):
                        break
            time.sleep(0.5)
        assert uid is not None and proc.poll() is None, "the rollout never reached its second wave"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    # No pause here: the killed run's ansible-playbook may still be switching hosts; resume settles it first.
    resumed = fleet.cli("rollout", "resume", uid, "--yes")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "recovered the lock" in resumed.stderr
    with fleet.ledger() as ledger:
        runs = [r for r in ledger.runs(limit=50) if r.summary.get("rollout") == uid]
    # The dead controller's run was waited for (or stopped) and recorded as cancelled; nothing of it runs on.
    assert "cancelled" in {r.status for r in runs} and "running" not in {r.status for r in runs}, runs
    assert all(run_processes(fleet.settings.runs_dir / r.uid) == [] for r in runs)
    assert {fleet.running(n) for n in ("ro-1", "ro-2", "ro-3")} == {"1.4.0"}
    with fleet.ledger() as ledger:
        record = ledger.rollout(uid)
    assert record is not None and record.state == "completed"
    assert {h.status for h in record.hosts if h.wave >= 0} == {"healthy"}


def test_one_rollout_per_client_and_a_stale_lock_is_recovered(fleet: Fleet) -> None:
    build(fleet, "1.5.0")
    with fleet.ledger() as ledger:
        ledger.create_rollout(
            "ro-held", release_version="1.5.0", track="hotfix", plan={}, clients=["beta"],
            hosts=[("beta", "ro-4", 0, "pending", "1.5.0", "1.1.0")],
        )  # fmt: skip
        # Held by a live process of this machine: our own pid.
        ledger.acquire_rollout_locks(
            ["beta"], "ro-held", holder_host=os.uname().nodename, holder_pid=os.getpid(), is_stale=lambda _l: False
        )
    refused = fleet.cli("rollout", "start", "1.5.0", "--client", "beta", "--yes")
    assert refused.returncode == 1 and "ro-held" in refused.stderr and str(os.getpid()) in refused.stderr, (
        refused.stderr
    )
    with fleet.ledger() as ledger:
        ledger.release_rollout_locks("ro-held")
        dead = subprocess.Popen(["true"])
        dead.wait()
        ledger.acquire_rollout_locks(
            ["beta"], "ro-held", holder_host=os.uname().nodename, holder_pid=dead.pid, is_stale=lambda _l: False
        )
    started = fleet.cli("rollout", "start", "1.5.0", "--client", "beta", "--yes")
    assert started.returncode == 0, started.stderr[-3000:]
    assert "recovered the lock of beta" in started.stderr
    assert fleet.running("ro-4") == "1.5.0"


def test_feature_release_reaches_only_the_trained_client(fleet: Fleet) -> None:
    build(fleet, "2.0.0", track="feature", requires_training="ops-2", notes="New detection dashboard.")
    day = (dt.date.today() + dt.timedelta(days=7)).isoformat()  # a session in the past is refused
    scheduled = fleet.cli(
        "training",
        "schedule",
        "--client",
        "beta",
        "--release",
        "2.0.0",
        "--date",
        day,
        "--trainer",
        "Lea Trainer",
    )
    assert scheduled.returncode == 0, scheduled.stderr
    packet = fleet.settings.home / "training" / "beta" / "2.0.0" / "training-packet.md"
    assert "Lea Trainer" in packet.read_text() and "ops-2" in packet.read_text()
    signed = fleet.cli(
        "training",
        "signoff",
        "--client",
        "alpha",
        "--release",
        "2.0.0",
        "--trainer",
        "Lea Trainer",
        "--attendee",
        "Ana Ops",
        "--unscheduled",  # alpha was trained without a scheduled session: recorded as such
    )
    assert signed.returncode == 0, signed.stderr
    plan = json.loads(fleet.cli("rollout", "plan", "2.0.0", "--all", "--json").stdout)
    waiting = {w["client"]: w for w in plan["waiting"]}
    assert set(waiting) == {"beta"} and waiting["beta"]["reason"] == "training" and day in json.dumps(waiting["beta"])
    started = fleet.cli("rollout", "start", "2.0.0", "--all", "--yes")
    assert started.returncode == 0, started.stderr[-3000:]
    assert {fleet.running(n) for n in ("ro-1", "ro-2", "ro-3")} == {"2.0.0"}
    assert fleet.running("ro-4") == "1.5.0"


def test_closed_window_defers_a_client_but_not_a_24_7_one(fleet: Fleet) -> None:
    build(fleet, "2.0.1")
    now = dt.datetime.now(dt.UTC)
    closed_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(now.weekday() + 3) % 7].capitalize()
    closed = f"{closed_day} 03:00-04:00 UTC"
    fleet.set_window("alpha", closed)
    fleet.set_window("beta", closed)  # beta is enterprise: 24/7, never held back by a window
    try:
        plan = json.loads(fleet.cli("rollout", "plan", "2.0.1", "--all", "--json").stdout)
        waiting = {w["client"]: w for w in plan["waiting"]}
        assert set(waiting) == {"alpha"} and waiting["alpha"]["reason"] == "window" and waiting["alpha"]["until"]
        assert [h["host"] for w in plan["waves"] for h in w["hosts"]] == ["ro-4"]
        emergency = json.loads(
            fleet.cli("rollout", "plan", "2.0.1", "--all", "--json", "--emergency", "CVE fix").stdout
        )
        assert emergency["waiting"] == [] and emergency["emergency_reason"] == "CVE fix"
    finally:
        fleet.set_window("alpha", "always")
        fleet.set_window("beta", "always")


def test_explicit_rollback_returns_a_finished_rollout_to_the_previous_release(fleet: Fleet) -> None:
    with fleet.ledger() as ledger:
        done = next(r for r in ledger.rollouts(client="beta") if r.release_version == "1.5.0")
        assert done.state == "completed" and fleet.running("ro-4") == "1.5.0"
        switched_by = next(r.run_uid for r in ledger.host_releases("beta") if r.host == "ro-4")
        assert switched_by is not None and "-rollout-" in switched_by  # the agent run that switched it
    rolled = fleet.cli("rollout", "rollback", done.uid, "--yes")
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    assert fleet.running("ro-4") == "1.1.0"
    with fleet.ledger() as ledger:
        child = ledger.rollouts(limit=1)[0]
        assert child.parent_uid == done.uid and child.state == "rolled_back"
        assert {h.host: h.status for h in child.hosts} == {"ro-4": "rolled_back"}
        moves = [
            (e.payload["from"], e.payload["to"])
            for e in ledger.events()
            if e.kind == "rollout.state" and e.subject == child.uid
        ]
        assert moves == [("planned", "rolling_back"), ("rolling_back", "rolled_back")]
        assert next(r.release_version for r in ledger.host_releases("beta") if r.host == "ro-4") == "1.1.0"
        assert ledger.verify().ok


def test_a_hung_host_fails_at_its_task_timeout_and_the_rest_of_its_wave_finishes(fleet: Fleet) -> None:
    from .test_bounded import hanging

    build(fleet, "2.0.5")  # above the feature release 2.0.0 the test before brought alpha
    tracks = fleet.settings.inventories / "alpha" / "tracks.yml"
    saved = tracks.read_text()
    hotfix = {
        **FAST_TRACKS["hotfix"],
        "failure_budget": {"max_failed": 1, "max_failed_percent": 50},
        "task_timeout_seconds": 10,
    }
    tracks.write_text(yaml.safe_dump({**FAST_TRACKS, "hotfix": {**hotfix, "run_timeout_seconds": 180}}))
    started = time.monotonic()
    try:
        with hanging(lambda command: fleet.ssh("ro-3", command)):
            started_rollout = fleet.cli(
                "rollout", "start", "2.0.5", "--client", "alpha", "--yes", "--json", timeout=600
            )
    finally:
        tracks.write_text(saved)
    assert time.monotonic() - started < 300
    # The hung host is left without the release: the rollout ends completed_with_failures (exit 1), naming it, and
    # keeps it pending (with why) for a resume, as for any host a wave missed.
    assert started_rollout.returncode == 1 and "alpha/ro-3" in started_rollout.stderr, started_rollout.stderr[-3000:]
    out = json.loads(started_rollout.stdout)
    assert out["state"] == "completed_with_failures"
    assert {h["host"]: h["status"] for h in out["hosts"]} == {"ro-1": "healthy", "ro-2": "healthy", "ro-3": "pending"}
    assert "Timed out after 10 second(s)" in next(h["why"] for h in out["hosts"] if h["host"] == "ro-3")
    assert fleet.running("ro-1") == fleet.running("ro-2") == "2.0.5"
    with fleet.ledger() as ledger:
        assert next(r.release_version for r in ledger.host_releases("alpha") if r.host == "ro-3") == "2.0.0"


def test_an_agent_left_on_another_version_than_its_link_is_restarted_by_the_next_run(fleet: Fleet) -> None:
    """A controller killed between the link switch and the restart: current points at the release, the old agent
    still runs. The link no longer changes on the next run, so only comparing what runs with the link catches it."""
    from orchestrator import inventory, paths
    from orchestrator.runner import RunRequest, run_playbook, tail_stdout

    def running_version() -> str:
        probe = "python3 -c \"import json,urllib.request as u;print(json.load(u.urlopen('http://127.0.0.1:9110/healthz'))['version'])\""
        return fleet.ssh("ro-1", probe).strip()

    now = running_version()
    older = fleet.ssh("ro-1", "readlink /opt/sentry/previous").strip().rsplit("/", 1)[-1]
    assert older and older != now
    fleet.ssh(
        "ro-1",
        f"ln -sfn /opt/sentry/releases/{older} /opt/sentry/c.t && mv -T /opt/sentry/c.t /opt/sentry/current",
    )
    assert running_version() == now  # the half-switched host: link on one release, agent on another
    # The previous release is one of the catalog's, or the development bundle provisioning shipped.
    dev = provision.dev_bundle(fleet.settings)
    release = dev if dev.version == older else releases.get_release(fleet.settings.home, older)
    inv = inventory.load(fleet.settings.inventories, "alpha")
    request = RunRequest(playbook=paths.playbook("agent.yml"), inventory=inv, label="finish-switch", limit="ro-1",
                         extravars=releases.agent_extravars(release))  # fmt: skip
    result = run_playbook(request, fleet.settings)
    assert result.ok, tail_stdout(result)
    assert running_version() == older == fleet.running("ro-1")
    again = run_playbook(request, fleet.settings)
    assert again.ok and again.changed_total == 0, tail_stdout(again)


def rollout_record(fleet: Fleet, uid: str) -> object:
    with fleet.ledger() as ledger:
        record = ledger.rollout(uid)
    assert record is not None
    return record


def test_all_clients_skips_a_client_that_already_runs_the_release(fleet: Fleet) -> None:
    build(fleet, "2.1.0")
    first = fleet.cli("rollout", "start", "2.1.0", "--client", "beta", "--yes")
    assert first.returncode == 0, first.stderr[-3000:]
    assert fleet.running("ro-4") == "2.1.0"
    started = fleet.cli("rollout", "start", "2.1.0", "--all", "--yes", "--json")
    assert started.returncode == 0, started.stderr[-3000:]
    assert "nothing to do for beta" in started.stderr
    out = json.loads(started.stdout)
    assert out["state"] == "completed" and out["ok"] is True
    assert {(h["client"], h["host"]): h["status"] for h in out["hosts"]} == {
        ("alpha", "ro-1"): "healthy",
        ("alpha", "ro-2"): "healthy",
        ("alpha", "ro-3"): "healthy",
    }
    assert {fleet.running(n) for n in fleet.hosts} == {"2.1.0"}


def test_a_missed_host_ends_completed_with_failures_and_resume_brings_it_the_release(fleet: Fleet) -> None:
    build(fleet, "2.1.1")
    tracks = fleet.settings.inventories / "alpha" / "tracks.yml"
    before = tracks.read_text()
    # One failed host of alpha's three is within this budget: the rollout goes on, but does not call it done.
    tracks.write_text(
        yaml.safe_dump(
            {
                **FAST_TRACKS,
                "hotfix": {**FAST_TRACKS["hotfix"], "failure_budget": {"max_failed": 1, "max_failed_percent": None}},
            }
        )
    )
    veth = fleet.hosts["ro-3"].veth
    subprocess.run(["ip", "link", "set", veth, "down"], check=True)
    try:
        started = fleet.cli("rollout", "start", "2.1.1", "--client", "alpha", "--yes", "--json")
    finally:
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
        tracks.write_text(before)
    assert started.returncode == 1, started.stderr[-3000:]
    assert "completed with failures" in started.stderr and "alpha/ro-3 (agent playbook unreachable" in started.stderr
    out = json.loads(started.stdout)
    assert out["state"] == "completed_with_failures"
    statuses = {h["host"]: h["status"] for h in out["hosts"]}
    assert statuses == {"ro-1": "healthy", "ro-2": "healthy", "ro-3": "pending"}
    assert "unreachable" in next(h["why"] for h in out["hosts"] if h["host"] == "ro-3")
    deadline = time.monotonic() + 60
    while subprocess.run(
        [*fleet.lab.ssh_argv(fleet.hosts["ro-3"]), "true"], capture_output=True, check=False
    ).returncode:
        assert time.monotonic() < deadline, "ro-3 never answered again"
        time.sleep(1)
    assert fleet.running("ro-3") == "2.1.0"
    with fleet.ledger() as ledger:
        assert next(r.release_version for r in ledger.host_releases("alpha") if r.host == "ro-3") == "2.1.0"
    resumed = fleet.cli("rollout", "resume", out["rollout"], "--yes", "--json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout)["state"] == "completed"
    assert {fleet.running(n) for n in ("ro-1", "ro-2", "ro-3")} == {"2.1.1"}
    with fleet.ledger() as ledger:
        assert {r.release_version for r in ledger.host_releases("alpha")} == {"2.1.1"}


def test_a_client_outside_its_window_waits_in_the_rollout_until_continue(fleet: Fleet) -> None:
    build(fleet, "2.1.2")
    now = dt.datetime.now(dt.UTC)
    closed_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(now.weekday() + 3) % 7].capitalize()
    fleet.set_window("alpha", f"{closed_day} 03:00-04:00 UTC")
    try:
        started = fleet.cli("rollout", "start", "2.1.2", "--all", "--yes", "--json")
        assert started.returncode == 3, started.stderr[-3000:]
        assert "waiting for window" in started.stderr
        out = json.loads(started.stdout)
        assert out["state"] == "waiting_window"
        statuses = {h["host"]: h["status"] for h in out["hosts"]}
        assert statuses == {"ro-1": "deferred", "ro-2": "deferred", "ro-3": "deferred", "ro-4": "healthy"}
        assert fleet.running("ro-4") == "2.1.2" and fleet.running("ro-1") == "2.1.1"
        still = fleet.cli("rollout", "continue", "--yes")
        assert still.returncode == 3, still.stderr[-3000:]  # the window is still closed: nothing moves
        assert fleet.running("ro-1") == "2.1.1"
    finally:
        fleet.set_window("alpha", "always")
    opened = fleet.cli("rollout", "continue", "--yes")
    assert opened.returncode == 0, opened.stderr[-3000:]
    assert {fleet.running(n) for n in fleet.hosts} == {"2.1.2"}
    with fleet.ledger() as ledger:
        record = ledger.rollout(out["rollout"])
        assert record is not None and record.state == "completed"
        assert {h.status for h in record.hosts} == {"healthy"}
        assert ledger.verify().ok
