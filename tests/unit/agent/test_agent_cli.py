"""``python -m sentry_agent`` as systemd runs it: a real process, real signals, real files, loopback only."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sentry_agent.spool import iter_records

from .agent_helpers import append, failed_logins, parse_exposition, wait_until

LISTENING_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def agent_env(pythonpath: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(pythonpath)
    return env


def run_cli(pythonpath: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentry_agent", *args],
        env=agent_env(pythonpath),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


class RunningAgent:
    """The agent process plus a thread draining its stderr (so it can never block on a full pipe)."""

    def __init__(self, pythonpath: Path, config: Path, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sentry_agent", "--config", str(config)],
            env=agent_env(pythonpath),
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            self._queue.put(line)

    def wait_for_port(self, timeout: float = 30.0) -> int:
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("agent did not report its port:\n" + "".join(self.lines)) from None
            if m := LISTENING_RE.search(line):
                return int(m.group(1))

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=20)
        return code


@pytest.fixture
def running(agent_dir: Path, config_dict: dict[str, Any], tmp_path: Path) -> Iterator[RunningAgent]:
    Path(config_dict["sources"][0]["path"]).write_text("", encoding="utf-8")
    agent = RunningAgent(agent_dir, write_config(tmp_path, config_dict), tmp_path)
    try:
        yield agent
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_detects_bans_spools_and_stops_cleanly(running: RunningAgent, config_dict: dict[str, Any]) -> None:
    port = running.wait_for_port()
    append(Path(config_dict["sources"][0]["path"]), failed_logins("203.0.113.7", 5))

    def bans() -> float:
        families = parse_exposition(get(f"http://127.0.0.1:{port}/metrics")[1])
        value: float = families["sentry_agent_bans_total"]["samples"]['rule="game-bruteforce"']
        return value

    assert wait_until(lambda: bans() == 1), "".join(running.lines)
    status, body = get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"

    assert running.stop() == 0, "".join(running.lines)
    spooled = list(iter_records(Path(config_dict["spool_dir"])))
    alerts = [r for r in spooled if r["type"] == "alert"]
    assert [(a["rule"], a["ip"], a["count"], a["action"]) for a in alerts] == [
        ("game-bruteforce", "203.0.113.7", 5, "recorded")
    ]
    assert [r["event"] for r in spooled if r["type"] == "heartbeat"] == ["start", "stop"]
    offsets = json.loads((Path(config_dict["state_dir"]) / "offsets.json").read_text(encoding="utf-8"))
    assert offsets["sources"]["game"]["offset"] == Path(config_dict["sources"][0]["path"]).stat().st_size
    assert any("ban recorded" in line for line in running.lines)


def test_check_config_ok_and_invalid(agent_dir: Path, config_dict: dict[str, Any], tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict)
    ok = run_cli(agent_dir, "--check-config", "--config", str(config), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("\n") == 1
    assert "OK" in ok.stdout and "1 active, 1 inactive" in ok.stdout

    config = write_config(tmp_path, {**config_dict, "listen_address": "0.0.0.0"})
    bad = run_cli(agent_dir, "--check-config", "--config", str(config), cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1
    assert "listen_address: must be a loopback address" in bad.stderr


def test_invalid_config_exits_2_with_one_line(
    agent_dir: Path,
    config_dict: dict[str, Any],
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, {**config_dict, "listen_port": "http"})
    result = run_cli(agent_dir, "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "listen_port: must be an integer" in result.stderr


def test_broken_rules_exit_2(agent_dir: Path, config_dict: dict[str, Any], tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rule = {
        "id": "r",
        "source": "game",
        "pattern": r"ip=(\S+)",
        "threshold": 1,
        "window_seconds": 1,
        "ban_seconds": 1,
    }
    rules.write_text(json.dumps({"version": "x", "rules": [rule]}), encoding="utf-8")
    config = write_config(tmp_path, {**config_dict, "rules_file": str(rules)})
    result = run_cli(agent_dir, "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "rule r: pattern: must define a named group" in result.stderr
    assert run_cli(agent_dir, "--check-config", "--config", str(config), cwd=tmp_path).returncode == 1


def make_release(agent_dir: Path, root: Path, version: str | None, rules_patch: dict[str, Any]) -> Path:
    """Lay out a release as the sentry_agent role installs it: package, rules/rules.json, VERSION."""
    release = root / "releases" / (version or "unversioned")
    skip_cache = shutil.ignore_patterns("__pycache__")
    shutil.copytree(agent_dir / "sentry_agent", release / "sentry_agent", ignore=skip_cache)
    rules = json.loads((agent_dir / "rules" / "rules.json").read_text(encoding="utf-8"))
    (release / "rules").mkdir()
    (release / "rules" / "rules.json").write_text(json.dumps({**rules, **rules_patch}), encoding="utf-8")
    if version is not None:
        (release / "VERSION").write_text(version + "\n", encoding="utf-8")
    current = root / "current"
    current.symlink_to(release)
    return current


def test_fault_injected_release_reports_failing(
    agent_dir: Path,
    config_dict: dict[str, Any],
    tmp_path: Path,
) -> None:
    current = make_release(agent_dir, tmp_path / "opt", "9.9.9-bad", {"self_test": "fail"})
    config = write_config(tmp_path, config_dict)
    check = run_cli(current, "--check-config", "--config", str(config), cwd=current)
    assert check.returncode == 0 and "self_test=fail" in check.stdout

    agent = RunningAgent(current, config, current)
    try:
        port = agent.wait_for_port()
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        doc = json.loads(body)
        assert (status, doc["status"]) == (503, "failing")
        # Version and rules come from the release the agent was started from, found through the symlink.
        assert doc["version"] == "9.9.9-bad"
        assert doc["rules_version"] == json.loads((agent_dir / "rules" / "rules.json").read_text())["version"]
        assert agent.stop(signal.SIGINT) == 0  # Ctrl-C in a foreground run is a clean stop too
        assert any("received SIGINT" in line for line in agent.lines)
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()


def test_release_without_version_file_does_not_start(
    agent_dir: Path,
    config_dict: dict[str, Any],
    tmp_path: Path,
) -> None:
    current = make_release(agent_dir, tmp_path / "opt", None, {})
    result = run_cli(current, "--config", str(write_config(tmp_path, config_dict)), cwd=current)
    assert result.returncode == 2
    assert "VERSION" in result.stderr and result.stderr.count("\n") == 1


def test_port_in_use_fails_to_start(agent_dir: Path, config_dict: dict[str, Any], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, {**config_dict, "listen_port": port})
        result = run_cli(agent_dir, "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot start" in result.stderr
