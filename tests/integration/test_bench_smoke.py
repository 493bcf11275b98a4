"""The benchmark, small: two lab hosts through every measured step, so it never rots. Checks the JSON it writes,
that its SSH login counting is exact, and that bare ansible-playbook really ran with sentryctl's settings."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bench.report import RATIOS, STEP_TITLES

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def test_bench_smoke_run_on_two_hosts(tmp_path: Path, lab_cache: str) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(ROOT / "bench" / "run"), "--hosts", "2", "--home", str(tmp_path / "home"), "--out", str(out),
         "--floor-repeats", "3"],
        capture_output=True, text=True, env={**os.environ, "SENTRY_LAB_CACHE": lab_cache}, timeout=2400, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((out / "latest.json").read_text())
    assert result["schema"] == 1 and result["machine"]["cpus"] and result["commit"]
    assert [s["hosts"] for s in result["sizes"]] == [2]
    size = result["sizes"][0]
    steps = size["steps"]
    assert set(steps) == set(STEP_TITLES)
    for name, step in steps.items():
        assert step["rc"] in ((0, 1) if name.startswith("audit") else (0,)), name
        assert step["wall_s"] > 0 and step["cpu_s"] > 0 and step["maxrss_mb"] > 0, name
    # Login counting is exact: one login per host for a new connection, none through an open one.
    assert steps["ssh_fresh"]["logins"] == 2 and steps["ssh_reuse"]["logins"] == 0
    # Every Ansible run connects at least once per host; the lab hosts did the work.
    for name in ("bare_cold", "sentryctl_cold", "rollout", "converge"):
        assert steps[name]["logins_per_host"] >= 1 and steps[name]["hosts_cpu_s"] > 1, name
    assert size["same_settings"] == {"ok": True, "differences": []}
    assert {r.key for r in RATIOS} <= set(size["ratios"])
    # One login per host for a whole rollout: the probe and the smoke checks ride the agent run's connection.
    assert size["ratios"]["rollout_logins_per_host"]["value"] == 1
    table = (out / "latest.md").read_text()
    assert "| ratio: wall time" in table and "N=2" in table and "sentryctl provision / bare" in table
    assert table in proc.stdout  # the table is printed too
    assert list(out.glob("bench-*.json"))
    assert not (tmp_path / "home" / "lab" / "bn").exists()  # the bench removed its lab
