"""Releases of the Sentry agent: deterministic, signed bundles of agent code and detection rules, and the
catalog that holds them.

One concern a module, each building only on those before it (no import cycle):

- :mod:`.errors`: :class:`ReleaseError` and how problems read;
- :mod:`.bundle`: the deterministic tarball and its manifest (same inputs, same bytes);
- :mod:`.signing`: the ed25519 release signing key, signatures of bundles;
- :mod:`.records`: a release as the catalog's ``release.json`` describes it;
- :mod:`.verify`: the offline gate before any release leaves this machine;
- :mod:`.catalog`: build a signed release into ``<home>/releases/catalog/``, get and list it.

The public names are re-exported here, so callers write ``releases.build_release(...)``.
"""

from __future__ import annotations

from ..versions import version_key
from .bundle import (
    MANIFEST,
    MODULE_RE,
    NAME,
    RULES,
    SHA256_RE,
    TRACKS,
    Bundle,
    Track,
    agent_extravars,
    build_bundle,
    bundle_name,
    load_notes,
    load_rules_file,
    sha256_file,
    signature_path,
    source_files,
    utc_timestamp,
    validate_track,
    validate_version,
)
from .catalog import build_release, get_release, list_releases
from .errors import LIST_HINT, ReleaseError
from .records import RELEASE_JSON, Release, catalog_dir
from .verify import verify_release

__all__ = [
    "LIST_HINT",
    "MANIFEST",
    "MODULE_RE",
    "NAME",
    "RELEASE_JSON",
    "RULES",
    "SHA256_RE",
    "TRACKS",
    "Bundle",
    "Release",
    "ReleaseError",
    "Track",
    "agent_extravars",
    "build_bundle",
    "build_release",
    "bundle_name",
    "catalog_dir",
    "get_release",
    "list_releases",
    "load_notes",
    "load_rules_file",
    "sha256_file",
    "signature_path",
    "source_files",
    "utc_timestamp",
    "validate_track",
    "validate_version",
    "verify_release",
    "version_key",
]
