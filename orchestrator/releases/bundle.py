"""The agent bundle: a deterministic tarball of the agent source with its manifest.

A bundle is a deterministic tarball (sorted entries, fixed owners, modes and times, a gzip header without a
timestamp) of the agent source with ``MANIFEST.json``: name, version, track, the release metadata (``created``,
``min_previous_version``, ``requires_training``, ``notes``) and the sha256 of every other file. The same inputs
give the same bytes, so the bundle's checksum names its content and re-provisioning with an unchanged release
changes nothing on hosts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import versions
from ..track_names import FEATURE, HOTFIX, TRACK_NAMES, TrackName
from ..versions import version_key
from .errors import ReleaseError

if TYPE_CHECKING:
    from .records import Release

Track = TrackName
TRACKS = TRACK_NAMES
MODULE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\Z")  # training module names, e.g. ids-tuning-201
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
EXCLUDED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
FIXED_MTIME = 1_700_000_000  # any constant: only that it never changes matters
NAME = "sentry-agent"
MANIFEST = "MANIFEST.json"
RULES = "rules/rules.json"


@dataclass(frozen=True)
class Bundle:
    path: Path
    version: str
    track: Track
    sha256: str
    manifest: dict[str, Any]


# ------------------------------------------------------------------------------------------------ validation
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_version(version: str) -> str:
    if not versions.is_valid(version):
        raise ReleaseError(f"invalid release version {version!r}", hint=versions.HINT)
    return version


def validate_track(track: str) -> Track:
    if track not in TRACKS:
        raise ReleaseError(f"unknown release track {track!r}", hint=f"use {' or '.join(TRACKS)}")
    return track


def utc_timestamp(value: datetime | str | None = None) -> str:
    """``value`` (default: now) as ``YYYY-MM-DDTHH:MM:SSZ``; a time without a timezone is refused."""
    hint = "use ISO 8601 with a timezone, e.g. 2026-01-31T12:00:00Z"
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ReleaseError(f"invalid creation time {value!r}", hint=hint) from None
    if value.tzinfo is None:
        raise ReleaseError(f"creation time {value.isoformat()} has no timezone", hint=hint)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metadata(
    version: str,
    track: Track,
    *,
    created: datetime | str | None,
    notes: str | None,
    requires_training: str | None,
    min_previous_version: str | None,
) -> dict[str, Any]:
    """The release fields of a manifest, validated."""
    if requires_training is not None:
        if track != FEATURE:
            raise ReleaseError(
                f"a {track} release cannot require training (requires_training={requires_training!r})",
                hint="training gates feature releases only: use --track feature, or drop --requires-training",
            )
        if not MODULE_RE.match(requires_training):
            raise ReleaseError(
                f"invalid training module name {requires_training!r}",
                hint="use lowercase letters, digits, '.', '_' and '-', e.g. ids-tuning-201",
            )
    if min_previous_version is not None and version_key(validate_version(min_previous_version)) >= version_key(version):
        raise ReleaseError(
            f"min_previous_version {min_previous_version} is not older than the release {version}",
            hint="name the oldest release hosts may upgrade from",
        )
    return {
        "created": None if created is None else utc_timestamp(created),
        "min_previous_version": min_previous_version,
        "requires_training": requires_training,
        "notes": (notes.rstrip() or None) if notes is not None else None,
    }


def load_notes(path: Path) -> str:
    """Release notes from a UTF-8 text file."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReleaseError(f"cannot read release notes {path}: {exc}", hint="pass a UTF-8 text file") from exc


def load_rules_file(path: Path) -> bytes:
    """The bytes of a detection rules file, once it is JSON with a ``version`` and a ``rules`` list.

    The agent validates rules fully when it starts (``python3 -m sentry_agent --check-config``); this is the
    shape check a release build can make without it. ``self_test`` may only be ``pass`` or ``fail`` (the
    fault-injection hook of agent/rules/README.md).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReleaseError(f"cannot read rules file {path}: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ReleaseError(f"rules file {path} is not valid JSON: {exc}") from None
    problem = None
    if not isinstance(doc, dict):
        problem = "must be a JSON object"
    elif not isinstance(doc.get("version"), str) or not doc["version"].strip():
        problem = "'version' must be a non-empty string, e.g. \"2026.11.2\""
    elif not isinstance(doc.get("rules"), list):
        problem = "'rules' must be a list of rules"
    elif doc.get("self_test", "pass") not in ("pass", "fail"):
        problem = f'\'self_test\' must be "pass" or "fail", got {doc["self_test"]!r}'
    if problem:
        raise ReleaseError(f"rules file {path}: {problem}", hint="see agent/rules/README.md for the format")
    return data


# --------------------------------------------------------------------------------------------------- bundles
def bundle_name(version: str) -> str:
    return f"{NAME}-{version}.tar.gz"


def signature_path(bundle: Path) -> Path:
    return bundle.with_name(bundle.name + ".sig")


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
    track: Track = HOTFIX,
    overrides: dict[str, bytes] | None = None,
    created: datetime | str | None = None,
    notes: str | None = None,
    requires_training: str | None = None,
    min_previous_version: str | None = None,
) -> Bundle:
    """Build ``<out_dir>/sentry-agent-<version>.tar.gz`` from the agent source tree.

    ``version`` overrides the VERSION file (the bundle's VERSION says what was asked for); ``overrides``
    replaces or adds files by their path inside the bundle (used to build test releases). The release fields
    go into the manifest as given (``None`` stays ``null``): no clock is read, so the bytes depend only on the
    inputs.
    """
    files = source_files(source)
    contents: dict[str, bytes] = {str(p.relative_to(source)): p.read_bytes() for p in files}
    version = validate_version(version or contents["VERSION"].decode().strip())
    track = validate_track(track)
    contents["VERSION"] = f"{version}\n".encode()
    contents.update(overrides or {})
    manifest: dict[str, Any] = {
        "name": NAME,
        "version": version,
        "track": track,
        **_metadata(
            version,
            track,
            created=created,
            notes=notes,
            requires_training=requires_training,
            min_previous_version=min_previous_version,
        ),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(contents.items())},
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(contents):
            _add(tar, name, contents[name])
        _add(tar, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / bundle_name(version)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(raw.getvalue())
    tmp.replace(path)
    return Bundle(path=path, version=version, track=track, sha256=sha256_file(path), manifest=manifest)


def agent_extravars(bundle: Bundle | Release) -> dict[str, str]:
    """What the site and agent playbooks need to install this bundle (or the bundle of this release)."""
    if not isinstance(bundle, Bundle):  # a Release (not imported here: records builds on this module)
        bundle = bundle.as_bundle()
    return {
        "sentry_agent_version": bundle.version,
        "sentry_agent_bundle": str(bundle.path),
        "sentry_agent_bundle_sha256": bundle.sha256,
        "sentry_release_track": bundle.track,
    }


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What makes a manifest unusable, or None."""
    version = manifest.get("version")
    if manifest.get("name") != NAME:
        return f"manifest names {manifest.get('name')!r}, not {NAME}"
    if not versions.is_valid(version):
        return f"manifest has an invalid version {version!r}"
    if manifest.get("track") not in TRACKS:
        return f"manifest has an unknown track {manifest.get('track')!r}"
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) and SHA256_RE.match(v) for v in files.values()):
        return "manifest has no valid list of file checksums"
    return None
