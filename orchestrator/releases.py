"""Releases of the Sentry agent: deterministic, signed bundles of agent code and detection rules, and the
catalog that holds them.

A bundle is a deterministic tarball (sorted entries, fixed owners, modes and times, a gzip header without a
timestamp) of the agent source with ``MANIFEST.json``: name, version, track, the release metadata (``created``,
``min_previous_version``, ``requires_training``, ``notes``) and the sha256 of every other file. The same inputs
give the same bytes, so the bundle's checksum names its content and re-provisioning with an unchanged release
changes nothing on hosts.

The catalog (``<home>/releases/catalog/``) holds one folder per version, never rewritten once made::

    <version>/sentry-agent-<version>.tar.gz       the bundle
    <version>/sentry-agent-<version>.tar.gz.sig   raw ed25519 signature of the bundle's exact bytes
    <version>/release.json                        {"manifest", "bundle", "sha256", "signature", "signed_by"}

``release.json`` is a convenience index and is not signed: :func:`list_releases` and :func:`get_release` read
it as is, while :func:`verify_release`, the gate before any release leaves this machine, checks the signature,
every file of the bundle, and that ``release.json`` agrees with the signed manifest. It never uses the network.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, cast

from . import versions
from .errors import OrchestratorError
from .versions import version_key

if TYPE_CHECKING:
    from .ledger import Ledger

log = logging.getLogger(__name__)

Track = Literal["hotfix", "feature"]
TRACKS: tuple[Track, ...] = ("hotfix", "feature")
MODULE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\Z")  # training module names, e.g. ids-tuning-201
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
EXCLUDED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
FIXED_MTIME = 1_700_000_000  # any constant: only that it never changes matters
NAME = "sentry-agent"
MANIFEST = "MANIFEST.json"
RULES = "rules/rules.json"
RELEASE_JSON = "release.json"
LIST_HINT = "see 'sentryctl release list'"
MAX_PROBLEMS = 5  # shown in one error line; the rest are counted


class ReleaseError(OrchestratorError):
    """Raised when a release cannot be built, read or verified."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    version: str
    track: Track
    sha256: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Release:
    """A release in the catalog (or a verified bundle): its bundle, signature and signed manifest."""

    version: str
    track: Track
    created: str | None  # ISO 8601 UTC, e.g. 2026-01-31T12:00:00Z; None only for bundles built without one
    bundle: Path  # sentry-agent-<version>.tar.gz
    sha256: str
    signature: Path  # <bundle>.sig
    manifest: dict[str, Any] = field(repr=False)
    requires_training: str | None = None
    min_previous_version: str | None = None
    notes: str | None = None
    signed_by: str | None = None  # key fingerprint, ed25519:<16 hex>

    def as_bundle(self) -> Bundle:
        """The release's bundle as provisioning takes it."""
        return Bundle(
            path=self.bundle, version=self.version, track=self.track, sha256=self.sha256, manifest=self.manifest
        )

    def to_json(self, *, manifest: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "track": self.track,
            "created": self.created,
            "bundle": str(self.bundle),
            "sha256": self.sha256,
            "signature": str(self.signature),
            "signed_by": self.signed_by,
            "requires_training": self.requires_training,
            "min_previous_version": self.min_previous_version,
            "notes": self.notes,
            "files": len(self.manifest.get("files", {})),
        }
        if manifest:
            data["manifest"] = self.manifest
        return data


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
        raise ReleaseError(f"unknown release track {track!r}", hint="use hotfix or feature")
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
        if track != "feature":
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
    track: Track = "hotfix",
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
    if isinstance(bundle, Release):
        bundle = bundle.as_bundle()
    return {
        "sentry_agent_version": bundle.version,
        "sentry_agent_bundle": str(bundle.path),
        "sentry_agent_bundle_sha256": bundle.sha256,
        "sentry_release_track": bundle.track,
    }


# --------------------------------------------------------------------------------------------------- catalog
def catalog_dir(home: Path) -> Path:
    return home / "releases" / "catalog"


def build_release(
    source: Path,
    home: Path,
    *,
    version: str,
    track: str = "hotfix",
    notes: str | None = None,
    requires_training: str | None = None,
    min_previous_version: str | None = None,
    rules_file: Path | None = None,
    created: datetime | str | None = None,
    ledger: Ledger | None = None,
) -> Release:
    """Build, sign and add release ``version`` to the catalog; versions are immutable, so never twice.

    ``track`` defaults to hotfix like :func:`build_bundle` (the CLI always asks for it); ``rules_file`` replaces
    rules/rules.json in the bundle; ``created`` defaults to now. The release is
    assembled in a hidden folder of the catalog, verified, and only then renamed into place, so the catalog
    never shows a half-built release. With a ``ledger``, the build is recorded as a ``release.built`` event.
    """
    from . import signing  # signing builds on ReleaseError, defined above

    version = validate_version(version)
    final = catalog_dir(home) / version
    if final.exists():
        raise _exists(version, final)
    overrides = {RULES: load_rules_file(rules_file)} if rules_file is not None else None
    signed_by = signing.check_key_pair(home)  # before any work: no key, no release
    catalog_dir(home).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=catalog_dir(home)))
    try:
        bundle = build_bundle(
            source,
            work,
            version=version,
            track=validate_track(track),
            overrides=overrides,
            created=utc_timestamp(created),
            notes=notes,
            requires_training=requires_training,
            min_previous_version=min_previous_version,
        )
        signature_path(bundle.path).write_bytes(signing.sign(bundle.path.read_bytes(), home))
        record = {
            "manifest": bundle.manifest,
            "bundle": bundle.path.name,
            "sha256": bundle.sha256,
            "signature": signature_path(bundle.path).name,
            "signed_by": signed_by,
        }
        (work / RELEASE_JSON).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _verify_dir(work, home)
        work.chmod(0o755)
        try:
            os.rename(work, final)
        except OSError as exc:  # another build of this version won the race
            raise _exists(version, final) from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("release %s (%s) built at %s, signed by %s", version, track, final, signed_by)
    release = _catalog_record(final)
    if ledger is not None:
        ledger.append_event(
            "release.built",
            None,
            version,
            {
                "track": release.track,
                "sha256": release.sha256,
                "signed_by": signed_by,
                "requires_training": release.requires_training,
                "min_previous_version": release.min_previous_version,
                "rules_sha256": release.manifest["files"].get(RULES),
            },
        )
    return release


def _exists(version: str, where: Path) -> ReleaseError:
    return ReleaseError(
        f"release {version} already exists in the catalog ({where}); released versions are immutable",
        hint="build the change as a new version, e.g. bump the patch number",
    )


def get_release(home: Path, version: str) -> Release:
    """The catalog's record of ``version`` (read from release.json, not verified: see :func:`verify_release`)."""
    directory = catalog_dir(home) / validate_version(version)
    if not directory.is_dir():
        raise ReleaseError(f"no release {version} in the catalog {catalog_dir(home)}", hint=LIST_HINT)
    return _catalog_record(directory)


def list_releases(home: Path) -> list[Release]:
    """Every release in the catalog, oldest version first (semantic order, see :func:`version_key`)."""
    catalog = catalog_dir(home)
    if not catalog.is_dir():
        return []
    found = [_catalog_record(d) for d in catalog.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return sorted(found, key=lambda r: (version_key(r.version), r.version))


def _load_record(directory: Path) -> dict[str, Any]:
    path = directory / RELEASE_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _damaged(directory, f"no {RELEASE_JSON}") from None
    except (OSError, ValueError) as exc:
        raise _damaged(directory, f"{RELEASE_JSON} is unreadable: {exc}") from None
    manifest = record.get("manifest") if isinstance(record, dict) else None
    if not isinstance(manifest, dict):
        raise _damaged(directory, f"{RELEASE_JSON} has no manifest")
    problem = _manifest_problem(manifest)
    if problem:
        raise _damaged(directory, f"{RELEASE_JSON}: {problem}")
    version = manifest["version"]
    if record.get("bundle") != bundle_name(version) or record.get("signature") != bundle_name(version) + ".sig":
        raise _damaged(directory, f"{RELEASE_JSON} names files other than {bundle_name(version)} and its .sig")
    if not isinstance(record.get("sha256"), str) or not SHA256_RE.match(record["sha256"]):
        raise _damaged(directory, f"{RELEASE_JSON} has no valid sha256")
    return cast(dict[str, Any], record)


def _damaged(directory: Path, problem: str) -> ReleaseError:
    return ReleaseError(
        f"release folder {directory} is damaged: {problem}",
        hint=f"check it with 'sentryctl release verify {directory}'; move it away if it is not a release",
    )


def _catalog_record(directory: Path) -> Release:
    """A catalog folder's release as its release.json describes it (unverified)."""
    record = _load_record(directory)
    manifest = record["manifest"]
    if manifest["version"] != directory.name:
        raise _damaged(directory, f"it holds release {manifest['version']}")
    bundle = directory / record["bundle"]
    return _release(bundle, manifest, sha256=record["sha256"], signed_by=record.get("signed_by"))


def _release(bundle: Path, manifest: dict[str, Any], *, sha256: str, signed_by: str | None) -> Release:
    return Release(
        version=manifest["version"],
        track=manifest["track"],
        created=manifest.get("created"),
        bundle=bundle,
        sha256=sha256,
        signature=signature_path(bundle),
        manifest=manifest,
        requires_training=manifest.get("requires_training"),
        min_previous_version=manifest.get("min_previous_version"),
        notes=manifest.get("notes"),
        signed_by=signed_by,
    )


def _manifest_problem(manifest: dict[str, Any]) -> str | None:
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


# ---------------------------------------------------------------------------------------------- verification
def verify_release(path_or_version: str | Path, home: Path) -> Release:
    """Refuse a release unless its signature, every file and its catalog record check out; offline.

    ``path_or_version`` is a catalog version (a ``str`` such as ``"1.4.2"``), a release folder, or a bundle
    file (its signature beside it as ``<bundle>.sig``). The signature is checked with the home's public key
    before the bundle is opened at all. Raises :class:`ReleaseError` naming what is wrong.
    """
    if isinstance(path_or_version, str) and versions.is_valid(path_or_version):
        directory = catalog_dir(home) / path_or_version
        if not directory.is_dir():
            raise ReleaseError(f"no release {path_or_version} in the catalog {catalog_dir(home)}", hint=LIST_HINT)
        release = _verify_dir(directory, home)
        if release.version != path_or_version:
            raise _damaged(directory, f"it holds release {release.version}")
        return release
    path = Path(path_or_version)
    if path.is_dir():
        return _verify_dir(path, home)
    if path.is_file():
        if (path.parent / RELEASE_JSON).is_file():  # a bundle inside a release folder: check the record too
            return _verify_dir(path.parent, home, bundle=path)
        return _verify_bundle(path, home)
    raise ReleaseError(
        f"no release or bundle file {str(path_or_version)!r}",
        hint="pass a catalog version (see 'sentryctl release list') or the path of a .tar.gz bundle",
    )


def _verify_dir(directory: Path, home: Path, bundle: Path | None = None) -> Release:
    from . import signing

    record = _load_record(directory)
    expected = directory / record["bundle"]
    if bundle is not None and bundle.resolve() != expected.resolve():
        raise ReleaseError(f"{bundle} is not the bundle that {directory / RELEASE_JSON} describes ({expected.name})")
    try:
        release = _verify_bundle(expected, home)
    except signing.SignatureError as exc:
        signed_by, current = record.get("signed_by"), _current_fingerprint(home)
        if signed_by and current and signed_by != current and "does not match" in exc.message:
            raise signing.SignatureError(
                f"{expected.name}: signature does not match: signed by {signed_by}, the signing key is now {current}",
                hint="the signing key was replaced after this release was built; build a new version",
            ) from exc
        raise
    problems = [
        f"{RELEASE_JSON}: {key} disagrees with the signed manifest"
        for key in sorted(set(record["manifest"]) | set(release.manifest))
        if record["manifest"].get(key) != release.manifest.get(key)
    ]
    if record["sha256"] != release.sha256:
        problems.append(f"{RELEASE_JSON}: sha256 disagrees with the bundle")
    if problems:
        raise _problems(
            directory.name, problems, hint="release.json was edited after the build: restore it before shipping"
        )
    return replace(release, signed_by=record.get("signed_by") or release.signed_by)


def _current_fingerprint(home: Path) -> str | None:
    from . import signing

    try:
        return signing.public_fingerprint(home)
    except ReleaseError:
        return None


def _verify_bundle(bundle: Path, home: Path) -> Release:
    from . import signing

    try:
        data = bundle.read_bytes()
    except FileNotFoundError:
        raise ReleaseError(f"missing bundle {bundle}") from None
    except OSError as exc:
        raise ReleaseError(f"cannot read bundle {bundle}: {exc.strerror}") from exc
    sig = signature_path(bundle)
    if not sig.is_file():
        raise signing.SignatureError(
            f"{bundle.name}: no signature file ({sig.name})",
            hint="unsigned bundles are refused; build releases with 'sentryctl release build'",
        )
    try:
        signing.verify(data, sig.read_bytes(), signing.public_key_path(home))
    except signing.SignatureError as exc:
        raise signing.SignatureError(f"{bundle.name}: {exc.message}", hint=exc.hint) from None
    manifest = _check_contents(data, bundle.name)
    if bundle.name != bundle_name(manifest["version"]):
        raise ReleaseError(f"{bundle.name}: file name disagrees with its manifest (version {manifest['version']})")
    return _release(bundle, manifest, sha256=hashlib.sha256(data).hexdigest(), signed_by=_current_fingerprint(home))


def _unsafe(member: tarfile.TarInfo) -> str | None:
    name = member.name
    if not name or name.startswith("/"):
        return f"unsafe member {name!r}: absolute or empty path"
    if ".." in PurePosixPath(name).parts:
        return f"unsafe member {name}: parent directory reference"
    if not member.isreg():
        kind = "directory" if member.isdir() else "link" if member.issym() or member.islnk() else "special file"
        return f"unsafe member {name}: {kind}, not a regular file"
    return None


def _check_contents(data: bytes, label: str) -> dict[str, Any]:
    """The bundle's manifest, once every member is safe and every file matches it exactly."""
    problems: list[str] = []
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                problem = _unsafe(member) or (f"duplicate member {member.name}" if member.name in contents else None)
                if problem:
                    problems.append(problem)
                    continue
                fh = tar.extractfile(member)
                contents[member.name] = fh.read() if fh else b""
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ReleaseError(f"{label}: not a readable gzip tarball ({exc})") from None
    if problems:
        raise _problems(label, problems, hint="refusing to open this bundle")
    if MANIFEST not in contents:
        raise _problems(label, [f"missing file {MANIFEST}"])
    try:
        manifest: dict[str, Any] = json.loads(contents.pop(MANIFEST))
    except ValueError:
        raise _problems(label, [f"{MANIFEST} is not valid JSON"]) from None
    problem = _manifest_problem(manifest) if isinstance(manifest, dict) else "manifest is not a JSON object"
    if problem:
        raise _problems(label, [problem])
    files: dict[str, str] = manifest["files"]
    problems += [f"unexpected file {name}" for name in sorted(set(contents) - set(files))]
    problems += [f"missing file {name}" for name in sorted(set(files) - set(contents))]
    problems += [
        f"{name}: checksum mismatch"
        for name in sorted(set(files) & set(contents))
        if hashlib.sha256(contents[name]).hexdigest() != files[name]
    ]
    if not problems and contents.get("VERSION", b"").decode(errors="replace").strip() != manifest["version"]:
        problems.append(f"VERSION disagrees with the manifest (version {manifest['version']})")
    if problems:
        raise _problems(label, problems)
    return manifest


def _problems(label: str, problems: list[str], hint: str | None = None) -> ReleaseError:
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
    return ReleaseError(
        f"{label}: {shown}{more}", hint=hint or "the bundle does not match its manifest: do not ship it"
    )
