"""The lab's base image and its local apt repository, built once with debootstrap and cached.

The cache key is a hash of the recipe below: change a package list and the next ``lab up`` builds a new
image beside the old one. Builds happen in a temporary folder that is renamed into place only when complete,
under a file lock, so an interrupted or concurrent build never leaves a half image that looks finished.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from . import system

log = logging.getLogger(__name__)

SUITE = "bookworm"

# In the image: what every host boots with, plus what the stack's roles expect to find without internet.
IMAGE_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "procps",
    "nftables",
    "ca-certificates",
)

# In the lab's apt repository, served on the bridge: what roles install, as they would at an air-gapped site.
# lighttpd is not used by the stack; the lab's own tests install it to prove the repository works.
REPO_PACKAGES: tuple[str, ...] = (
    "fail2ban",
    "python3-systemd",
    "lighttpd",
)

# Units that only slow a container down or fail in one.
MASKED_UNITS: tuple[str, ...] = (
    "systemd-firstboot.service",
    "console-getty.service",
    "getty@tty1.service",
    "systemd-pstore.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "dpkg-db-backup.timer",
    "systemd-journald-audit.socket",
)

RECIPE_VERSION = 5  # bump when the preparation steps below change


def recipe_key() -> str:
    recipe = {
        "suite": SUITE,
        "image": IMAGE_PACKAGES,
        "repo": REPO_PACKAGES,
        "masked": MASKED_UNITS,
        "v": RECIPE_VERSION,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class BaseImage:
    root: Path  # read-only lower layer of every host
    repo: Path  # flat apt repository (Packages.gz + .deb files)
    key: str


Progress = Callable[[str], None]


def mirror_from_sources(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine already uses, so the lab fetches from wherever the admin allows."""
    candidates = sorted(sources_dir.glob("sources.list.d/*.sources"))
    for path in candidates:
        uris: list[str] = []
        suites: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("URIs:"):
                uris = line.split()[1:]
            elif line.startswith("Suites:"):
                suites = line.split()[1:]
            elif not line.strip():
                if uris and SUITE in suites:
                    return uris[0]
                uris, suites = [], []
        if uris and SUITE in suites:
            return uris[0]
    sources_list = sources_dir / "sources.list"
    if sources_list.exists():
        pattern = re.compile(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s")
        for line in sources_list.read_text(encoding="utf-8").splitlines():
            match = pattern.match(line.strip())
            if match:
                return match.group(1)
    raise LabError(
        f"no Debian {SUITE} mirror found in {sources_dir}/sources.list(.d)",
        hint=f"configure apt for {SUITE}, or set SENTRY_LAB_MIRROR to a mirror URL",
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_image(cache: Path, progress: Progress) -> BaseImage:
    """Return the cached image for the current recipe, building it first if needed."""
    key = recipe_key()
    final = cache / f"{SUITE}-{key}"
    image = BaseImage(root=final / "root", repo=final / "repo", key=key)
    if (final / "complete").exists():
        return image
    with _locked(cache / f".{SUITE}-{key}.lock"):
        if (final / "complete").exists():  # another process built it while we waited
            return image
        building = cache / f".building-{SUITE}-{key}"
        if building.exists():
            shutil.rmtree(building)  # a previous build was interrupted
        building.mkdir(parents=True)
        try:
            _build(building, progress)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        if final.exists():
            shutil.rmtree(final)
        building.rename(final)
        (final / "complete").write_text(key + "\n")
        _remove_stale(cache, keep=final.name)
    return image


def _remove_stale(cache: Path, keep: str) -> None:
    for old in cache.glob(f"{SUITE}-*"):
        if old.name != keep and old.is_dir() and not any(old.glob("in-use-*")):
            log.info("removing outdated lab image %s", old)
            shutil.rmtree(old, ignore_errors=True)


def _build(work: Path, progress: Progress) -> None:
    root = work / "root"
    repo = work / "repo"
    mirror = os.environ.get("SENTRY_LAB_MIRROR") or mirror_from_sources()
    progress(f"building the lab base image (debootstrap {SUITE}, about a minute, once)")
    system.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(IMAGE_PACKAGES)}",
            SUITE,
            root,
            mirror,
        ],
        timeout=1200,
    )
    progress("filling the lab apt repository")
    _fill_repo(root, repo, mirror)
    progress("preparing the image for lab hosts")
    _prepare(root)


def _fill_repo(root: Path, repo: Path, mirror: str) -> None:
    """Download the repo packages plus exactly the dependencies the image lacks, using the image's own apt."""
    repo.mkdir()
    archives = root / "var/cache/apt/archives"
    # debootstrap leaves the image's own packages in the archive; only what apt downloads now belongs in the repo.
    for deb in archives.glob("*.deb"):
        deb.unlink()
    # The chroot resolves names with the machine's resolver; hosts themselves get none.
    shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
    (root / "etc/apt/sources.list").write_text(f"deb {mirror} {SUITE} main\n")
    system.run(["chroot", root, "apt-get", "-q", "update"], timeout=600)
    system.run(
        [
            "chroot",
            root,
            "apt-get",
            "-q",
            "-y",
            "--no-install-recommends",
            "--download-only",
            "install",
            *REPO_PACKAGES,
        ],
        timeout=900,
    )
    for deb in archives.glob("*.deb"):
        shutil.move(str(deb), repo / deb.name)
    if not any(repo.glob("*.deb")):
        raise LabError("the lab repository came out empty: apt downloaded no packages")
    # Paths in the index are relative to the repo, which is what a flat "deb URL ./" source expects.
    proc = system.run(["dpkg-scanpackages", "--multiversion", "."], timeout=120, cwd=repo)
    (repo / "Packages").write_text(proc.stdout)
    with gzip.open(repo / "Packages.gz", "wt") as fh:
        fh.write(proc.stdout)


def _prepare(root: Path) -> None:
    # Per-host identity is added in each host's upper layer; the shared image holds none.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    (root / "etc/resolv.conf").write_text("")
    (root / "etc/apt/sources.list").write_text("# written per lab host\n")
    journald = root / "etc/systemd/journald.conf.d"
    journald.mkdir(parents=True, exist_ok=True)
    (journald / "lab.conf").write_text("[Journal]\nStorage=volatile\nRuntimeMaxUse=8M\n")
    sshd_dropin = root / "etc/ssh/sshd_config.d"
    sshd_dropin.mkdir(parents=True, exist_ok=True)
    # Only the key the lab generates; without this sshd also looks for rsa/ecdsa keys that do not exist.
    (sshd_dropin / "lab.conf").write_text("HostKey /etc/ssh/ssh_host_ed25519_key\nUseDNS no\n")
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    system.run(["chroot", root, "apt-get", "clean"], timeout=120)
    lists = root / "var/lib/apt/lists"
    for item in lists.iterdir():
        if item.is_file():
            item.unlink()
    # Hosts start with no package index; an old timestamp makes every 'cache_valid_time' fetch the lab's.
    (root / "var/lib/apt/periodic/update-success-stamp").unlink(missing_ok=True)
    os.utime(lists, (0, 0))
