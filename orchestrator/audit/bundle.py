"""Evidence bundles: a folder an auditor can file, that proves itself.

``MANIFEST.json`` lists the sha256 of every other file; ``MANIFEST.sig`` is the raw ed25519 signature of
``MANIFEST.json`` with Sentry's signing key (the one that signs releases, ``<home>/keys``). Anyone can check it
with openssl alone::

    openssl pkeyutl -verify -pubin -inkey release-signing.pub -rawin -in MANIFEST.json -sigfile MANIFEST.sig

and then the checksums with ``sha256sum``; ``sentryctl audit verify`` does both and names every file that was
altered, removed or added.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..releases import ReleaseError, sha256_file, signing
from .errors import BundleError

MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"
FORMAT = "sentry-audit-bundle/1"


def _files(root: Path) -> list[str]:
    return sorted(
        name
        for name in (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        # Only the top-level pair is the seal; a MANIFEST.json deeper down is an ordinary file, checked like any.
        if name not in (MANIFEST, SIGNATURE)
    )


def seal(root: Path, home: Path, meta: dict[str, Any]) -> str:
    """Write MANIFEST.json over every file under ``root`` and sign it; return the manifest's sha256."""
    manifest = {
        "format": FORMAT,
        **meta,
        "signed_by": signing.public_fingerprint(home),
        "files": {name: sha256_file(root / name) for name in _files(root)},
    }
    data = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    (root / MANIFEST).write_bytes(data)
    (root / SIGNATURE).write_bytes(signing.sign(data, home))
    return hashlib.sha256(data).hexdigest()


@dataclass
class BundleCheck:
    bundle: Path
    signed_by: str | None = None
    manifest_sha256: str | None = None
    altered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not (self.altered or self.missing or self.added)

    def problems(self) -> list[str]:
        return (
            [f"altered: {n} (its sha256 differs from the signed manifest)" for n in self.altered]
            + [f"missing: {n} (listed in the signed manifest)" for n in self.missing]
            + [f"added: {n} (not in the signed manifest)" for n in self.added]
        )


def verify(bundle: Path, public_key: Path) -> BundleCheck:
    """Check the signature over MANIFEST.json, then every file against it. A missing or wrong signature raises
    BundleError (nothing in the bundle can be trusted then); file differences are returned, each named."""
    if not bundle.is_dir():
        raise BundleError(f"{bundle} is not a folder", hint="give the path of an evidence bundle folder")
    manifest_path, sig_path = bundle / MANIFEST, bundle / SIGNATURE
    if not manifest_path.is_file():
        raise BundleError(f"{bundle} has no {MANIFEST}: not an evidence bundle, or its manifest was removed")
    if not sig_path.is_file():
        raise BundleError(f"{bundle} is not signed: {SIGNATURE} is missing", hint="do not file it; audit again")
    data = manifest_path.read_bytes()
    try:
        signing.verify(data, sig_path.read_bytes(), public_key)
    except ReleaseError as exc:
        raise BundleError(
            f"{bundle}: the signature does not match {MANIFEST} ({exc.message})",
            hint="the manifest was altered or signed with another key; do not file it",
        ) from exc
    try:
        manifest = json.loads(data)
        listed: dict[str, str] = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{bundle}: {MANIFEST} is signed but unreadable: {exc}") from exc
    check = BundleCheck(
        bundle, signed_by=manifest.get("signed_by"), manifest_sha256=hashlib.sha256(data).hexdigest(), files=len(listed)
    )
    present = set(_files(bundle))
    for name, digest in sorted(listed.items()):
        path = bundle / name
        if name not in present:
            check.missing.append(name)
        elif sha256_file(path) != digest:
            check.altered.append(name)
    check.added = sorted(present - set(listed))
    return check


def private_dir(path: Path) -> Path:
    """Create a bundle folder readable by its owner only: a bundle holds inventory and ledger excerpts."""
    path.mkdir(parents=True, mode=0o700)
    os.chmod(path, 0o700)
    return path
