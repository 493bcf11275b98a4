"""``sentryctl demo``: the whole story on a real lab, checked by its own report and by looking at what it left
behind (an intact ledger, evidence bundles, training packets, and no lab); plus its edges without a lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.demo import STEPS, workspace_settings
from orchestrator.lab.manager import Lab
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings

LAB = "dm"


def run(tmp: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SENTRY_HOME": str(tmp / "home"),
        "SENTRY_INVENTORIES": str(tmp / "inventories"),
        "COLUMNS": "160",
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "demo", *args], capture_output=True, text=True, env=env,
        timeout=timeout, check=False,
    )  # fmt: skip


def collectors_of(home: Path) -> list[int]:
    """Pids of 'collector serve' processes started with this home."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmdline and b"collector" in cmdline and f"SENTRY_HOME={home}".encode() in environ:
            found.append(int(proc.name))
    return found


def settings(tmp: Path) -> Settings:
    return Settings.from_env(home=tmp / "home", inventories=tmp / "inventories")


@pytest.mark.lab
def test_the_demo_tells_the_whole_story_and_removes_its_lab(tmp_path: Path, lab_cache: str) -> None:
    proc = run(tmp_path, "--name", LAB, "--json")
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    story = proc.stderr  # with --json the progress goes to stderr
    print(f"demo took {report['total_seconds']:.0f}s: {[(s['step'], s['seconds']) for s in report['steps']]}")
    assert [s["step"] for s in report["steps"]] == [name for name, _ in STEPS]
    # Its duration is printed, not asserted (speed is measured in bench/): the run itself is bounded by run()'s
    # timeout, and every step inside it by its own.
    for line in (
        "every host healthy on 1.0.1",
        "canary gate failed (acme/game-1)",
        "halted as it should",
        "later waves never touched (acme/game-2, acme/game-3)",
        "nightowl waits: training",
        "acme runs 1.1.0; nightowl stays on 1.0.1",
        "198.51.100.77 banned after",
        "not banned: management networks never are",
        "collector listening on https://",
        "acme/game-2's alert in fleet alerts: game-bruteforce 198.51.100.77",
        "silent in fleet status after",
    ):
        assert line in story, f"{line!r} missing from the story:\n{story[-4000:]}"
    assert {c: a["status"] for c, a in report["audits"].items()} == {"acme": "compliant", "nightowl": "compliant"}
    ws = workspace_settings(settings(tmp_path))
    assert not collectors_of(ws.home), "the demo left its collector running"
    for audit in report["audits"].values():  # signed with the workspace's key: verify there
        verified = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--home", str(ws.home), "audit", "verify", audit["bundle"]],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stderr
    assert report["workspace"] == str(ws.home)
    assert (ws.home / "training" / "acme" / "1.1.0" / "training-packet.md").exists()
    with Ledger.open(None, ws.home) as ledger:
        assert ledger.verify().ok
        states = [r.state for r in reversed(ledger.rollouts(limit=10))]
        assert states == ["completed", "rolled_back", "completed"]
        assert {r.host: r.release_version for r in ledger.host_releases("nightowl")} == {"arena-1": "1.0.1"}
        assert {r.release_version for r in ledger.host_releases("acme")} == {"1.1.0"}
    # The lab is gone, every kernel object with it.
    lab = Lab(ws, LAB)
    assert lab.state() is None and not lab.dir.exists()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"sentry-{lab.id}-" not in netns


@pytest.mark.lab
def test_down_removes_a_kept_demo_lab(tmp_path: Path, lab_cache: str) -> None:
    ws = workspace_settings(settings(tmp_path))
    lab = Lab(ws, LAB)
    try:
        lab.up(1, lambda _m: None)
        proc = run(tmp_path, "--down")
        assert proc.returncode == 0, proc.stderr
        assert lab.state() is None and not lab.dir.exists()
        again = run(tmp_path, "--down")
        assert again.returncode == 0 and "no demo lab is up" in again.stdout
    finally:
        lab.down(lambda _m: None)


@pytest.mark.lab  # the demo checks for root and the lab's tools first
def test_a_folder_that_is_not_a_demo_workspace_is_never_wiped(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me\n")
    proc = run(tmp_path, "--workdir", str(precious))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "is not a demo workspace" in proc.stderr and "--workdir" in proc.stderr
    assert (precious / "notes.txt").read_text() == "keep me\n"


def test_help_teaches_the_story_and_the_options() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "demo", "--help"], capture_output=True, text=True, check=True
    )
    for text in ("--keep", "--down", "--workdir", "canary", "roll back", "audit", "Example"):
        assert text in proc.stdout
