"""Small, checked wrappers around the host commands the lab needs (ip, mount, ssh-keygen ...).

Every command runs with an argument list (never a shell) and a timeout; a failure becomes a LabError naming
the command and what it printed, so the person sees the real cause in one line.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import LabError, PrerequisiteError

log = logging.getLogger(__name__)

# command -> Debian package that provides it
REQUIRED_TOOLS: dict[str, str] = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "dpkg-scanpackages": "dpkg-dev",
    "mount": "mount",
}


def require_root() -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError(
            "the lab needs root (it creates network namespaces, mounts and containers)",
            hint="run as root, e.g. 'sudo sentryctl lab up'",
        )


def require_tools(tools: Sequence[str] = tuple(REQUIRED_TOOLS)) -> None:
    missing = sorted({REQUIRED_TOOLS[t] for t in tools if shutil.which(t) is None})
    if missing:
        names = ", ".join(t for t in tools if shutil.which(t) is None)
        raise PrerequisiteError(
            f"missing {names}",
            hint=f"install the Debian package(s): apt-get install -y {' '.join(missing)}",
        )


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = 60,
    check: bool = True,
    input_text: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    args = [str(a) for a in argv]
    log.debug("run: %s", " ".join(args))
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input_text,
            cwd=cwd,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise PrerequisiteError(f"command not found: {args[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"'{' '.join(args[:3])}' did not finish within {timeout:.0f}s") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit code {proc.returncode}"
        raise LabError(f"'{' '.join(args[:4])}' failed: {last}")
    return proc


def is_mountpoint(path: Path) -> bool:
    target = str(path.resolve()) if path.exists() else str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        # Field 5 is the mount point; octal escapes encode spaces, which lab paths never contain.
        return any(line.split()[4] == target for line in fh if len(line.split()) > 4)


def unmount_all(path: Path) -> None:
    """Unmount until ``path`` is no longer a mount point: a stale overlay may be stacked more than once."""
    for _ in range(8):
        if not is_mountpoint(path):
            return
        run(["umount", path], check=False, timeout=30)
    if is_mountpoint(path):
        run(["umount", "--lazy", path], check=False, timeout=30)
