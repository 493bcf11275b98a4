"""Verification of a release, the gate before any release leaves this machine; offline.

The signature is checked with the home's public key before the bundle is opened at all; then every member of
the tarball must be a safe regular file that the signed manifest lists with its checksum, and a catalog folder's
``release.json`` must agree with that manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zlib
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from .. import versions
from . import signing
from .bundle import MANIFEST, bundle_name, manifest_problem, signature_path
from .errors import LIST_HINT, ReleaseError, damaged, problems_error
from .records import RELEASE_JSON, Release, catalog_dir, load_record, release_from_manifest


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
        release = verify_dir(directory, home)
        if release.version != path_or_version:
            raise damaged(directory, f"it holds release {release.version}")
        return release
    path = Path(path_or_version)
    if path.is_dir():
        return verify_dir(path, home)
    if path.is_file():
        if (path.parent / RELEASE_JSON).is_file():  # a bundle inside a release folder: check the record too
            return verify_dir(path.parent, home, bundle=path)
        return _verify_bundle(path, home)
    raise ReleaseError(
        f"no release or bundle file {str(path_or_version)!r}",
        hint="pass a catalog version (see 'sentryctl release list') or the path of a .tar.gz bundle",
    )


def verify_dir(directory: Path, home: Path, bundle: Path | None = None) -> Release:
    record = load_record(directory)
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
        raise problems_error(
            directory.name, problems, hint="release.json was edited after the build: restore it before shipping"
        )
    return replace(release, signed_by=record.get("signed_by") or release.signed_by)


def _current_fingerprint(home: Path) -> str | None:
    try:
        return signing.public_fingerprint(home)
    except ReleaseError:
        return None


def _verify_bundle(bundle: Path, home: Path) -> Release:
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
    return release_from_manifest(
        bundle, manifest, sha256=hashlib.sha256(data).hexdigest(), signed_by=_current_fingerprint(home)
    )


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
        raise problems_error(label, problems, hint="refusing to open this bundle")
    if MANIFEST not in contents:
        raise problems_error(label, [f"missing file {MANIFEST}"])
    try:
        manifest: dict[str, Any] = json.loads(contents.pop(MANIFEST))
    except ValueError:
        raise problems_error(label, [f"{MANIFEST} is not valid JSON"]) from None
    problem = manifest_problem(manifest) if isinstance(manifest, dict) else "manifest is not a JSON object"
    if problem:
        raise problems_error(label, [problem])
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
        raise problems_error(label, problems)
    return manifest
