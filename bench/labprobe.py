"""What the lab hosts saw, read from outside them (so measuring costs no SSH login): sshd logins from each host's
journal through ``/proc/<pid>/root``, CPU from each host's cgroup; and the SSH connection masters to close
between steps, so no step rides on another's connections."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

from orchestrator.lab.proc import CGROUP_ROOT
from orchestrator.lab.state import HostState, LabState

ACCEPTED = "Accepted publickey for "


def count_logins(journal_text: str) -> dict[str, int]:
    """Accepted SSH logins per host name in ``journalctl -o short-iso`` output of sshd messages."""
    counts: Counter[str] = Counter()
    for line in journal_text.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2].startswith("sshd[") and parts[3].startswith(ACCEPTED):
            counts[parts[1]] += 1
    return dict(counts)


def parse_cpu_stat(text: str) -> float:
    """CPU seconds from a cgroup v2 ``cpu.stat`` (its ``usage_usec`` line)."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1e6
    return 0.0


def container_pid(host: HostState) -> int | None:
    """The host's init (the child of its systemd-nspawn): /proc/<it>/root is the host's own file system view."""
    if not host.proc:
        return None
    pid = host.proc["pid"]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


class LabProbe:
    def __init__(self, state: LabState) -> None:
        self.state = state
        self.hosts = list(state.hosts.values())

    def journal_files(self) -> list[str]:
        files: list[str] = []
        for h in self.hosts:
            pid = container_pid(h)
            if pid is not None:
                files += [str(p) for p in Path(f"/proc/{pid}/root/run/log/journal").glob("*/*.journal")]
        return files

    def logins(self) -> dict[str, int]:
        files = self.journal_files()
        if not files:
            return {}
        argv = ["journalctl", "--no-pager", "-q", "-o", "short-iso", "SYSLOG_IDENTIFIER=sshd"]
        for f in files:
            argv += ["--file", f]
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120).stdout
        return count_logins(out)

    def cpu_seconds(self) -> float:
        total = 0.0
        for h in self.hosts:
            path = CGROUP_ROOT / "unified" / h.cgroup / "cpu.stat"
            try:
                total += parse_cpu_stat(path.read_text())
            except OSError:
                continue
        return total

    def settle(self, idle_share: float = 0.1, window: float = 1.0, timeout: float = 60.0) -> float:
        """Wait until the hosts (freshly booted, or winding down after a step) use under ``idle_share`` of one
        core each, measured over ``window`` seconds; returns how long that took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            before = self.cpu_seconds()
            time.sleep(window)
            if self.cpu_seconds() - before < idle_share * window * len(self.hosts):
                break
        return time.monotonic() - start
