"""Processes the lab starts: identified by pid plus start time (never by name), so a recycled pid is never
mistaken for ours, and confined to cgroups of their own so nothing they leave behind escapes teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# systemd inside a container needs its own cgroup in both hierarchies of this hybrid setup (LAB.md).
CGROUP_HIERARCHIES: tuple[str, ...] = ("unified", "systemd")


@dataclass(frozen=True)
class ProcRef:
    pid: int
    start_ticks: int  # /proc/<pid>/stat field 22: distinguishes our process from a later one with its pid

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "start_ticks": self.start_ticks}

    @classmethod
    def from_json(cls, data: dict[str, int] | None) -> ProcRef | None:
        return cls(data["pid"], data["start_ticks"]) if data else None


def start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after the closing parenthesis are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie is as good as gone; it only waits for its parent to reap it
    return int(fields[19])


def alive(ref: ProcRef | None) -> bool:
    return ref is not None and start_ticks(ref.pid) == ref.start_ticks


def reap(pid: int) -> None:
    """Collect an exited child of ours so it does not linger as a zombie; others are PID 1's to reap."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def cgroup_dirs(group: str) -> list[Path]:
    return [CGROUP_ROOT / h / group for h in CGROUP_HIERARCHIES if (CGROUP_ROOT / h).is_dir()]


def spawn_detached(argv: Sequence[str], log_file: Path, cgroup: str | None = None) -> ProcRef:
    """Start a long-lived process in its own session (and cgroups), outliving this command."""
    dirs = cgroup_dirs(cgroup) if cgroup else []
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)

    def enter_cgroups() -> None:
        for d in dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    with log_file.open("ab") as log:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=enter_cgroups if dirs else None,  # noqa: PLW1509 - must run between fork and exec
            close_fds=True,
        )
    ticks = None
    for _ in range(50):
        ticks = start_ticks(child.pid)
        if ticks is not None:
            break
        time.sleep(0.01)
    if ticks is None:
        child.wait(timeout=5)
        raise OSError(f"{argv[0]} exited at once (see {log_file})")
    return ProcRef(child.pid, ticks)


def cgroup_pids(group: str) -> set[int]:
    pids: set[int] = set()
    for d in cgroup_dirs(group):
        if not d.is_dir():
            continue
        for procs in d.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    return pids


def stop(ref: ProcRef | None, cgroup: str | None, grace: float) -> None:
    """SIGTERM our process, wait up to ``grace`` seconds, then SIGKILL it and everything left in its cgroups."""
    if alive(ref):
        assert ref is not None
        os.kill(ref.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and alive(ref):
            reap(ref.pid)
            time.sleep(0.1)
        if alive(ref):
            os.kill(ref.pid, signal.SIGKILL)
    if ref is not None:
        reap(ref.pid)
    if cgroup:
        for _ in range(50):
            left = cgroup_pids(cgroup)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                reap(pid)
            time.sleep(0.1)
        remove_cgroup(cgroup)


def remove_cgroup(group: str) -> None:
    for d in cgroup_dirs(group):
        if not d.is_dir():
            continue
        # Children first: a cgroup directory can only be removed once it has no sub-groups.
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                sub.rmdir()
            except OSError:
                pass
        try:
            d.rmdir()
        except OSError:
            pass
