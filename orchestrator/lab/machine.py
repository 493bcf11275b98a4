"""One lab host: an overlay root over the shared image, its own identity, booted by systemd-nspawn."""

from __future__ import annotations

import logging
import shutil
import socket
import time
from pathlib import Path

from ..errors import LabError
from . import proc, system
from .state import HostState

log = logging.getLogger(__name__)


def host_dir(lab_dir: Path, name: str) -> Path:
    return lab_dir / "hosts" / name


def write_identity(upper: Path, *, hostname: str, host_key_dir: Path, authorized_key: str, apt_source: str) -> None:
    """Files in the upper layer override the image: this is all that makes a host this host."""
    (upper / "etc/ssh").mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".pub"):
        src = host_key_dir / f"ssh_host_ed25519_key{suffix}"
        dst = upper / "etc/ssh" / src.name
        shutil.copy2(src, dst)
        dst.chmod(0o600 if not suffix else 0o644)
    (upper / "etc/hostname").write_text(hostname + "\n")
    (upper / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {hostname}\n")
    ssh_dir = upper / "root/.ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (ssh_dir / "authorized_keys").write_text(authorized_key + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)
    (upper / "etc/apt").mkdir(parents=True, exist_ok=True)
    (upper / "etc/apt/sources.list").write_text(apt_source + "\n")


def generate_host_key(key_dir: Path, comment: str) -> str:
    key = key_dir / "ssh_host_ed25519_key"
    if not key.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key])
    parts = (key_dir / "ssh_host_ed25519_key.pub").read_text().split()
    return f"{parts[0]} {parts[1]}"


def mount_root(image_root: Path, hdir: Path) -> Path:
    upper, work, root = hdir / "upper", hdir / "work", hdir / "root"
    for d in (upper, work, root):
        d.mkdir(parents=True, exist_ok=True)
    system.unmount_all(root)  # a stale overlay is not reported when mounting again (LAB.md)
    system.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={image_root},upperdir={upper},workdir={work}",
            root,
        ]
    )
    return root


def boot(host: HostState, hdir: Path) -> proc.ProcRef:
    argv = [
        "systemd-nspawn",
        "-q",
        "-D",
        host.root,
        "--boot",
        "--register=no",
        "--keep-unit",
        f"--machine={host.machine}",
        f"--network-namespace-path=/run/netns/{host.netns}",
        "--console=passive",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
        # nspawn keeps CAP_NET_ADMIN only with --private-network; a host owns its namespace, so nftables
        # (the firewall role, the agent's bans) must work inside it.
        "--capability=CAP_NET_ADMIN",
    ]
    try:
        return proc.spawn_detached(argv, hdir / "console.log", cgroup=host.cgroup)
    except OSError as exc:
        raise LabError(f"host {host.name} did not boot: {exc}") from exc


def ssh_banner(address: str, timeout: float = 1.0) -> bool:
    """True once sshd answers with its identification string (cheaper than a full login)."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def wait_ready(host: HostState, ssh_argv: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive(host.proc_ref):
            raise LabError(f"host {host.name} stopped while booting", hint="see its console.log in the lab dir")
        if ssh_banner(host.address):
            result = system.run([*ssh_argv, "true"], check=False, timeout=15)
            if result.returncode == 0:
                return
        time.sleep(0.2)
    raise LabError(f"host {host.name} ({host.address}) did not accept SSH within {timeout:.0f}s")


def shutdown(host: HostState, grace: float = 15.0) -> None:
    proc.stop(host.proc_ref, host.cgroup, grace=grace)
    # /run is not a tmpfs here, so nspawn's propagation dir outlives the container.
    shutil.rmtree(Path("/run/systemd/nspawn/propagate") / host.machine, ignore_errors=True)
    system.unmount_all(Path(host.root))


def remove_files(hdir: Path) -> None:
    if not hdir.exists():
        return
    if system.is_mountpoint(hdir / "root"):
        raise LabError(f"{hdir / 'root'} is still mounted; refusing to delete under it")
    # --one-file-system: never follow into anything still mounted below.
    system.run(["rm", "-rf", "--one-file-system", hdir], timeout=120)
