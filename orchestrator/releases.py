"""Release bundles of the Sentry agent: a deterministic tarball of agent/ code and detection rules with a
manifest of every file's sha256.

Deterministic means the same sources give the same bytes (sorted entries, fixed owners, modes and times, a
gzip header without a timestamp), so the bundle's checksum names its content and re-provisioning with an
unchanged release changes nothing on hosts. Signing and the release catalog build on this.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import OrchestratorError

Track = Literal["hotfix", "feature"]
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
EXCLUDED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
FIXED_MTIME = 1_700_000_000  # any constant: only that it never changes matters


class ReleaseError(OrchestratorError):
    """Raised when a release cannot be built, read or verified."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    version: str
    track: Track
    sha256: str
    manifest: dict[str, Any]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise ReleaseError(f"invalid release version {version!r}", hint="use MAJOR.MINOR.PATCH, e.g. 1.4.2")
    return version


def source_files(source: Path) -> list[Path]:
    """The files a bundle carries: the agent package, its rules and VERSION, nothing generated."""
    wanted = [
        source / "VERSION",
        *sorted((source / "sentry_agent").rglob("*.py")),
        *sorted((source / "rules").glob("*")),
    ]
    files = [p for p in wanted if p.is_file() and not EXCLUDED_PARTS.intersection(p.parts)]
    if not (source / "VERSION").is_file() or not any(p.name == "__main__.py" for p in files):
        raise ReleaseError(f"{source} does not look like the agent source (VERSION, sentry_agent/__main__.py)")
    return files


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = FIXED_MTIME
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def build_bundle(
    source: Path,
    out_dir: Path,
    *,
    version: str | None = None,
    track: Track = "hotfix",
    overrides: dict[str, bytes] | None = None,
) -> Bundle:
    """Build ``<out_dir>/sentry-agent-<version>.tar.gz`` from the agent source tree.

    ``version`` overrides the VERSION file (the bundle's VERSION says what was asked for); ``overrides``
    replaces or adds files by their path inside the bundle (used to build test releases).
    """
    files = source_files(source)
    contents: dict[str, bytes] = {str(p.relative_to(source)): p.read_bytes() for p in files}
    version = validate_version(version or contents["VERSION"].decode().strip())
    contents["VERSION"] = f"{version}\n".encode()
    contents.update(overrides or {})
    manifest: dict[str, Any] = {
        "name": "sentry-agent",
        "version": version,
        "track": track,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(contents.items())},
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(contents):
            _add(tar, name, contents[name])
        _add(tar, "MANIFEST.json", json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"sentry-agent-{version}.tar.gz"
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(raw.getvalue())
    tmp.replace(path)
    return Bundle(path=path, version=version, track=track, sha256=sha256_file(path), manifest=manifest)


def agent_extravars(bundle: Bundle) -> dict[str, str]:
    """What the site and agent playbooks need to install this bundle."""
    return {
        "sentry_agent_version": bundle.version,
        "sentry_agent_bundle": str(bundle.path),
        "sentry_agent_bundle_sha256": bundle.sha256,
        "sentry_release_track": bundle.track,
    }
