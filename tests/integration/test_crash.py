"""kill -9 of the controller at known points of a host's switch, on real lab hosts: the host is on the old release
or the new one, never half, and `rollout resume` brings it to a consistent end (link, running agent and ledger
agree). A pause wrapper on the host blocks one command (the unpack's tar, the link's mv, the agent's restart)
until the test lets it go, so the kill lands exactly there."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator import releases
from orchestrator.lab.manager import Lab
from orchestrator.lab.state import HostState
from orchestrator.ledger import Ledger
from orchestrator.runner import kill_leftovers, run_processes
from orchestrator.settings import Settings

from .conftest import provisioned_lab

pytestmark = pytest.mark.lab

AGENT = Path(__file__).resolve().parents[2] / "agent"
TRACKS = {
    "hotfix": {
        "waves": [{"name": "canary", "hosts_per_client": 1}, {"name": "rest", "percent": 100}],
        "soak_seconds": 0,
        "health_timeout_seconds": 30,
        "failure_budget": {"max_failed": 0},
    }
}
PAUSE = "/run/sentry-crash-pause"  # while it exists, matching calls block (at most 300 s)
PAUSED = "/run/sentry-crash-paused"  # a call is blocked right now
HEALTH = (
    'python3 -c "import json,urllib.request;'
    "print(json.load(urllib.request.urlopen('http://127.0.0.1:9110/healthz',timeout=3))['version'])\""
)


@dataclass
class Fleet:
    settings: Settings
    lab: Lab
    hosts: dict[str, HostState]
    env: dict[str, str]

    def ssh(self, name: str, command: str, check: bool = True) -> str:
        proc = subprocess.run(
            [*self.lab.ssh_argv(self.hosts[name]), command], capture_output=True, text=True, timeout=60, check=False
        )
        assert not check or proc.returncode == 0, f"{name}: {command}: {proc.stderr}"
        return proc.stdout

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True,
                              env=self.env, timeout=900, check=False)  # fmt: skip

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "orchestrator", *args], env=self.env, text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip

    def ledger(self) -> Ledger:
        return Ledger.open(self.settings.db_url, self.settings.home)

    def state(self, name: str) -> tuple[str, str]:
        """(where current points, what the agent answers): read on the host."""
        link = self.ssh(name, "readlink /opt/sentry/current").strip().rsplit("/", 1)[-1]
        return link, self.ssh(name, HEALTH, check=False).strip() or "no answer"

    def whole(self, name: str) -> tuple[str, str]:
        """The host is on one release: its link's release is complete (unpacked from a verified bundle) and the
        running agent is that release."""
        link, running = self.state(name)
        release = f"/opt/sentry/releases/{link}"
        self.ssh(name, f"test -f {release}/.bundle.sha256 && test -f {release}/VERSION")
        return link, running


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, lab_cache: str) -> Iterator[Fleet]:
    layout = {"gamma": (["cr-1", "cr-2"], "professional")}
    with provisioned_lab(tmp_path_factory, "cr", 2, layout, TRACKS) as (settings, lab, hosts, env):
        yield Fleet(settings, lab, hosts, env)


@contextlib.contextmanager
def paused(fleet: Fleet, name: str, binary: str, pattern: str) -> Iterator[None]:
    """Make ``binary`` on host ``name`` block while PAUSE exists whenever its arguments contain ``pattern``."""
    wrapper = (
        f'#!/bin/sh\ncase "$*" in *{pattern}*)\n'
        f"  n=0; while [ -e {PAUSE} ] && [ $n -lt 3000 ]; do echo $$ > {PAUSED}; sleep 0.1; n=$((n+1)); done;;\nesac\n"
        f'exec {binary}.real "$@"\n'
    )
    swap = "python3 -c 'import os,sys; os.replace(sys.argv[1], sys.argv[2])'"
    fleet.ssh(name, f"rm -f {PAUSED}; touch {PAUSE}; cp -p {binary} {binary}.real && cat > {binary}.wrap <<'EOF'\n"
                    f"{wrapper}EOF\nchmod 755 {binary}.wrap && {swap} {binary}.wrap {binary}")  # fmt: skip
    try:
        yield
    finally:
        fleet.ssh(name, f"rm -f {PAUSE} {PAUSED}; {swap} {binary}.real {binary}")


def wait_paused(fleet: Fleet, name: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if fleet.ssh(name, f"test -e {PAUSED} && echo paused", check=False).strip() == "paused":
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} never reached the pause point (controller exit {proc.poll()})")


def rollout_uid(fleet: Fleet, version: str) -> str:
    with fleet.ledger() as ledger:
        (record,) = [r for r in ledger.rollouts(limit=5) if r.release_version == version]
    return record.uid


def open_runs(fleet: Fleet, uid: str) -> list[Path]:
    with fleet.ledger() as ledger:
        runs = [r for r in ledger.runs(limit=50) if r.status == "running" and r.summary.get("rollout") == uid]
    return [fleet.settings.runs_dir / r.uid for r in runs]


def assert_consistent_end(fleet: Fleet, uid: str, version: str) -> None:
    for name in ("cr-1", "cr-2"):
        assert fleet.whole(name) == (version, version), name
    with fleet.ledger() as ledger:
        record = ledger.rollout(uid)
        assert record is not None and record.state == "completed", record
        assert {h.status for h in record.hosts} == {"healthy"}
        assert {r.host: r.release_version for r in ledger.host_releases("gamma")} == {"cr-1": version, "cr-2": version}


def start_and_kill_at_the_pause(fleet: Fleet, version: str) -> None:
    """``rollout start`` as a process of its own, SIGKILLed once the canary's command is blocked (see paused)."""
    proc = fleet.popen("rollout", "start", version, "--client", "gamma", "--yes")
    try:
        wait_paused(fleet, "cr-1", proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)


# (the command blocked on the canary, its arguments, the host state frozen there: link's release, running agent)
POINTS = {
    "unpack": ("/usr/bin/tar", "-xzf", "old", "old"),
    "link switch": ("/usr/bin/mv", "/opt/sentry/current", "old", "old"),
    "agent restart": ("/usr/bin/systemctl", "restart", "new", "old"),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_a_controller_killed_mid_switch_leaves_the_host_whole_and_resume_finishes(fleet: Fleet, point: str) -> None:
    binary, pattern, frozen_link, frozen_running = POINTS[point]
    version = {"unpack": "2.1.0", "link switch": "2.2.0", "agent restart": "2.3.0"}[point]
    old = fleet.state("cr-1")[0]
    releases.build_release(AGENT, fleet.settings.home, version=version)
    with paused(fleet, "cr-1", binary, pattern):
        start_and_kill_at_the_pause(fleet, version)
        uid = rollout_uid(fleet, version)
        expected = {"old": old, "new": version}
        assert fleet.whole("cr-1") == (expected[frozen_link], expected[frozen_running])
        assert fleet.whole("cr-2") == (old, old)
        if point == "unpack":  # the release is unpacked into a staging dir: its own dir does not exist yet
            there = f"test -e /opt/sentry/releases/{version} && echo present || echo absent"
            assert fleet.ssh("cr-1", there).strip() == "absent"
        # The controller's machine lost power: its orphaned Ansible run dies with it, and so does the command it
        # had started on the host (as a dropped connection would end it).
        runs = open_runs(fleet, uid)
        assert runs and any(run_processes(r) for r in runs), "the dead controller's run should still be running"
        for run in runs:
            kill_leftovers(run)
        fleet.ssh("cr-1", f"kill -9 $(cat {PAUSED}) 2>/dev/null || true")  # gone with its session, or now
    resumed = fleet.cli("rollout", "resume", uid, "--yes")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if point == "agent restart":
        assert "finishing its switch" in resumed.stderr, resumed.stderr[-3000:]
    assert_consistent_end(fleet, uid, version)


def test_resume_waits_for_the_dead_controllers_ansible_run(fleet: Fleet) -> None:
    """kill -9 leaves the controller's ansible-playbook running (blocked on the canary's unpack here): resume waits
    for it instead of racing it on the same host, and starts no run of its own before it ended."""
    version = "2.4.0"
    releases.build_release(AGENT, fleet.settings.home, version=version)
    with paused(fleet, "cr-1", "/usr/bin/tar", "-xzf"):
        start_and_kill_at_the_pause(fleet, version)
        uid = rollout_uid(fleet, version)
        (orphan,) = open_runs(fleet, uid)
        assert run_processes(orphan)
        resume = fleet.popen("rollout", "resume", uid, "--yes")
        lines: queue.Queue[str] = queue.Queue()
        assert resume.stderr is not None
        stream = resume.stderr

        def pump() -> None:
            for line in stream:
                lines.put(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        seen: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("dead controller left" in s for s in seen):
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        assert any("dead controller left" in s for s in seen), "".join(seen)
        with fleet.ledger() as ledger:  # it waits: no run of its own yet, the orphan still holds the host
            assert [r.uid for r in ledger.runs(limit=50) if r.summary.get("rollout") == uid] == [orphan.name]
        assert run_processes(orphan)
        fleet.ssh("cr-1", f"rm -f {PAUSE}")  # let the orphan finish on its own
        resume.wait(timeout=600)
        reader.join(timeout=30)
        while not lines.empty():
            seen.append(lines.get())
    assert resume.returncode == 0, "".join(seen)[-3000:]
    assert run_processes(orphan) == []
    assert not any("stopped the orphaned run" in s for s in seen), "".join(seen)
    assert_consistent_end(fleet, uid, version)
