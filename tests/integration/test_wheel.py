"""sentryctl installed from its wheel, outside the source tree, onboards and provisions real lab hosts.

The wheel is built from this tree, installed into a fresh virtualenv in a temporary folder, and every command
runs from another temporary folder with no SENTRY_PROJECT_DIR: if the package still needed its source tree
(playbooks, roles, templates, the agent), this fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sentryctl console script of a fresh venv holding only the wheel and its dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SENTRY_PROJECT_DIR", "VIRTUAL_ENV")}
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(ROOT)],
        cwd=work,
        env=env,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheels = sorted(work.glob("sentryctl-*.whl"))
    assert len(wheels) == 1, wheels
    venv = work / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=work, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    constraints = ROOT / "constraints.txt"
    if constraints.exists():
        pip += ["-c", str(constraints)]
    got = _run([*pip, str(wheels[0])], cwd=work, env=env, timeout=900)
    assert got.returncode == 0, got.stderr
    return venv / "bin" / "sentryctl"


def test_a_wheel_installed_outside_the_tree_onboards_and_provisions(
    installed: Path, tmp_path: Path, lab_cache: str
) -> None:
    home, inventories, elsewhere = tmp_path / "home", tmp_path / "inventories", tmp_path / "cwd"
    elsewhere.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SENTRY_PROJECT_DIR", "VIRTUAL_ENV")},
        "SENTRY_HOME": str(home),
        "SENTRY_INVENTORIES": str(inventories),
        "SENTRY_LAB_CACHE": lab_cache,
        "PATH": f"{installed.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "COLUMNS": "200",
    }

    def sentryctl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return _run([str(installed), *args], cwd=elsewhere, env=env, timeout=timeout)

    where = _run(
        [str(installed.parent / "python"), "-c", "import orchestrator.paths as p; print(p.project_root())"],
        cwd=elsewhere,
        env=env,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert str(ROOT) not in where.stdout and "site-packages" in where.stdout, where.stdout

    up = sentryctl("lab", "up", "--name", "wheel", "--hosts", "1")
    assert up.returncode == 0, up.stderr
    try:
        lab = json.loads((home / "lab" / "wheel" / "state.json").read_text())
        host = next(iter(lab["hosts"].values()))
        subnet = lab["subnet"]
        key = home / "lab" / "wheel" / "id_ed25519"
        steps = [
            (
                "client",
                "new",
                "whl",
                "--tier",
                "essentials",
                "--host",
                f"w1={host['address']}",
                "--mgmt-network",
                subnet,
                "--key",
                str(key),
            ),
            ("hosts", "pin", "--client", "whl", "--yes"),
            ("preflight", "--client", "whl"),
            ("provision", "--client", "whl"),
            ("release", "keygen"),
            ("release", "build", "--version", "1.0.1", "--track", "hotfix"),
            ("release", "verify", "1.0.1"),
        ]
        for argv in steps:
            proc = sentryctl(*argv, timeout=900)
            assert proc.returncode == 0, f"sentryctl {' '.join(argv)}: {proc.stderr}{proc.stdout[-2000:]}"
    finally:
        down = sentryctl("lab", "down", "--name", "wheel")
        assert down.returncode == 0, down.stderr
