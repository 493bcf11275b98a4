"""The catalog's records: a release as ``<home>/releases/catalog/<version>/release.json`` describes it.

The catalog holds one folder per version, never rewritten once made::

    <version>/sentry-agent-<version>.tar.gz       the bundle
    <version>/sentry-agent-<version>.tar.gz.sig   raw ed25519 signature of the bundle's exact bytes
    <version>/release.json                        {"manifest", "bundle", "sha256", "signature", "signed_by"}

``release.json`` is a convenience index and is not signed: reading it here checks its shape, not its truth
(that is :mod:`.verify`'s work). Both the catalog and verification read records, so they live below both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .bundle import SHA256_RE, Bundle, Track, bundle_name, manifest_problem, signature_path
from .errors import damaged

RELEASE_JSON = "release.json"


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


def catalog_dir(home: Path) -> Path:
    return home / "releases" / "catalog"


def load_record(directory: Path) -> dict[str, Any]:
    """The folder's release.json, once its shape is right (not verified)."""
    path = directory / RELEASE_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise damaged(directory, f"no {RELEASE_JSON}") from None
    except (OSError, ValueError) as exc:
        raise damaged(directory, f"{RELEASE_JSON} is unreadable: {exc}") from None
    manifest = record.get("manifest") if isinstance(record, dict) else None
    if not isinstance(manifest, dict):
        raise damaged(directory, f"{RELEASE_JSON} has no manifest")
    problem = manifest_problem(manifest)
    if problem:
        raise damaged(directory, f"{RELEASE_JSON}: {problem}")
    version = manifest["version"]
    if record.get("bundle") != bundle_name(version) or record.get("signature") != bundle_name(version) + ".sig":
        raise damaged(directory, f"{RELEASE_JSON} names files other than {bundle_name(version)} and its .sig")
    if not isinstance(record.get("sha256"), str) or not SHA256_RE.match(record["sha256"]):
        raise damaged(directory, f"{RELEASE_JSON} has no valid sha256")
    return cast(dict[str, Any], record)


def catalog_record(directory: Path) -> Release:
    """A catalog folder's release as its release.json describes it (unverified)."""
    record = load_record(directory)
    manifest = record["manifest"]
    if manifest["version"] != directory.name:
        raise damaged(directory, f"it holds release {manifest['version']}")
    bundle = directory / record["bundle"]
    return release_from_manifest(bundle, manifest, sha256=record["sha256"], signed_by=record.get("signed_by"))


def release_from_manifest(bundle: Path, manifest: dict[str, Any], *, sha256: str, signed_by: str | None) -> Release:
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
