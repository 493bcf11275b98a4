"""The release catalog (``<home>/releases/catalog/``): build a signed release into it, read and list it.

:func:`list_releases` and :func:`get_release` read ``release.json`` as is, while
:func:`~orchestrator.releases.verify.verify_release`, the gate before any release leaves this machine, checks the
signature, every file of the bundle, and that ``release.json`` agrees with the signed manifest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..track_names import HOTFIX
from ..versions import version_key
from . import signing
from .bundle import (
    RULES,
    build_bundle,
    load_rules_file,
    signature_path,
    utc_timestamp,
    validate_track,
    validate_version,
)
from .errors import LIST_HINT, ReleaseError
from .records import RELEASE_JSON, Release, catalog_dir, catalog_record
from .verify import verify_dir

if TYPE_CHECKING:
    from ..ledger import Ledger

log = logging.getLogger(__name__)


def build_release(
    source: Path,
    home: Path,
    *,
    version: str,
    track: str = HOTFIX,
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
        verify_dir(work, home)
        work.chmod(0o755)
        try:
            os.rename(work, final)
        except OSError as exc:  # another build of this version won the race
            raise _exists(version, final) from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("release %s (%s) built at %s, signed by %s", version, track, final, signed_by)
    release = catalog_record(final)
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
    return catalog_record(directory)


def list_releases(home: Path) -> list[Release]:
    """Every release in the catalog, oldest version first (semantic order, see :func:`version_key`)."""
    catalog = catalog_dir(home)
    if not catalog.is_dir():
        return []
    found = [catalog_record(d) for d in catalog.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return sorted(found, key=lambda r: (version_key(r.version), r.version))
