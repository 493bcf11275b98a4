"""Where SSH connection masters live, for every tool that opens them: Ansible runs and the OpenSSH configs that
testinfra uses (health, smoke, audit).

Two rules decide the place:
- An open master is reused without any host key check, so a master opened under other pins (another inventory,
  another state home, or the same file before a re-pin) must never serve a connection: the folder is keyed by
  the state home, the pinned-keys file's path and its content.
- A unix socket path holds at most 108 bytes and ssh appends a 17-byte suffix while it sets a master up, so a
  deep state home would break connection reuse: the folder is a short hashed name in the temp dir.

Sockets are named ``%C`` (ssh's hash of local host, host, port and user) by Ansible and by our ssh_config alike,
so a check that runs after a playbook rides the connection the playbook opened instead of logging in again.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tempfile
from pathlib import Path

from .errors import ConfigError

# ssh expands %C itself; Ansible's control_path setting is %-formatted first, hence the doubled %.
SOCKET_NAME = "%C"
ANSIBLE_CONTROL_PATH = "%(directory)s/%%C"


def masters_dir(home: Path, known_hosts: Path) -> Path:
    """The folder of the masters that connect with the pins in ``known_hosts`` for the state home ``home``."""
    try:
        pins = known_hosts.read_bytes()
    except OSError:
        pins = b""
    key = hashlib.sha256(
        str(home.resolve()).encode() + b"\0" + str(known_hosts.resolve()).encode() + b"\0" + pins
    ).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"sentry-cp-{key}"


def ensure_masters_dir(home: Path, known_hosts: Path) -> Path:
    """Create the folder (0700). The temp dir is shared: a folder of that name that is a link, or that another user
    owns, could hand our connections to someone else's socket, so it is refused in one line."""
    path = masters_dir(home, known_hosts)
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise ConfigError(
            f"{path} (where sentryctl keeps its SSH connections) is not a folder of this user",
            hint=f"remove {path}, or set TMPDIR to a private folder",
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def close_masters(folder: Path) -> int:
    """Ask every connection master with a socket in ``folder`` to exit (the next connection logs in afresh);
    returns how many exited. Bounded: a master that does not answer within 10 s is left to its ControlPersist."""
    closed = 0
    if not folder.is_dir():
        return 0
    for sock in folder.iterdir():
        if not sock.is_socket():
            continue
        try:
            done = subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "sentry-master"],
                capture_output=True,
                check=False,
                timeout=10,
            )
        except subprocess.TimeoutExpired:
            continue
        closed += done.returncode == 0
        sock.unlink(missing_ok=True)
    return closed
