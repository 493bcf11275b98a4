"""One measured step: a subprocess, its wall time, its CPU and memory (os.wait4), and what the lab hosts saw."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
SAMPLE_SECONDS = 0.25


class HostsProbe(Protocol):
    def logins(self) -> dict[str, int]: ...
    def cpu_seconds(self) -> float: ...


@dataclass(frozen=True)
class Measurement:
    """What one step cost. ``cpu`` is the controller's (the child and its waited-for descendants); ``hosts_cpu``
    is what the lab hosts spent meanwhile; ``logins`` are sshd logins accepted on the hosts during the step."""

    step: str
    hosts: int
    wall: float
    user: float
    sys: float
    maxrss_mb: float  # the largest single process of the tree (ru_maxrss)
    tree_rss_mb: float  # the peak of the whole tree's summed RSS, sampled every SAMPLE_SECONDS
    hosts_cpu: float
    logins: int
    rc: int
    log: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def logins_per_host(self) -> float:
        return self.logins / self.hosts if self.hosts else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "hosts": self.hosts,
            "wall_s": round(self.wall, 3),
            "cpu_s": round(self.cpu, 3),
            "user_s": round(self.user, 3),
            "sys_s": round(self.sys, 3),
            "maxrss_mb": round(self.maxrss_mb, 1),
            "tree_rss_mb": round(self.tree_rss_mb, 1),
            "hosts_cpu_s": round(self.hosts_cpu, 3),
            "logins": self.logins,
            "logins_per_host": round(self.logins_per_host, 2),
            "rc": self.rc,
            "log": self.log,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(
            step=data["step"],
            hosts=data["hosts"],
            wall=data["wall_s"],
            user=data["user_s"],
            sys=data["sys_s"],
            maxrss_mb=data["maxrss_mb"],
            tree_rss_mb=data["tree_rss_mb"],
            hosts_cpu=data["hosts_cpu_s"],
            logins=data["logins"],
            rc=data["rc"],
            log=data.get("log", ""),
            extra=data.get("extra", {}),
        )


def parse_stat(text: str) -> tuple[int, int]:
    """(ppid, rss in pages) from the text of /proc/<pid>/stat (the command name may hold spaces and parens)."""
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[21])


def tree_rss_kb(root: int, table: Mapping[int, tuple[int, int]]) -> int:
    """Summed RSS (KiB) of ``root`` and all its descendants in a {pid: (ppid, rss pages)} table."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
        todo.extend(children.get(pid, ()))
    return total * PAGE_KB


def _proc_table() -> dict[int, tuple[int, int]]:
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    table[int(entry.name)] = parse_stat(fh.read())
            except (OSError, IndexError, ValueError):
                continue
    return table


class TreeSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_SECONDS):
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid, _proc_table()))


def run_measured(
    step: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path,
    probe: HostsProbe,
    hosts: int,
    cwd: Path | None = None,
    timeout: float = 7200,
) -> Measurement:
    logins_before, cpu_before = probe.logins(), probe.cpu_seconds()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        start = time.monotonic()
        child = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        sampler = TreeSampler(child.pid)
        sampler.start()
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        sampler.stopping.set()
        sampler.join()
    logins_after, cpu_after = probe.logins(), probe.cpu_seconds()
    logins = sum(max(0, logins_after.get(h, 0) - logins_before.get(h, 0)) for h in logins_after)
    return Measurement(
        step=step,
        hosts=hosts,
        wall=wall,
        user=usage.ru_utime,
        sys=usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,
        tree_rss_mb=max(sampler.peak_kb / 1024, usage.ru_maxrss / 1024),  # a short step may end between samples
        hosts_cpu=max(0.0, cpu_after - cpu_before),
        logins=logins,
        rc=child.returncode,
        log=str(log),
    )


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def median_measurement(runs: Sequence[Measurement]) -> Measurement:
    """The run with the median wall time (a real run, so its numbers stay consistent with each other)."""
    ordered = sorted(runs, key=lambda m: m.wall)
    chosen = ordered[(len(ordered) - 1) // 2]
    return Measurement(**{**chosen.__dict__, "extra": {**chosen.extra, "walls": [round(m.wall, 3) for m in runs]}})
