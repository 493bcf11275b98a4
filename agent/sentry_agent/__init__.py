"""The Sentry agent: tails log files, bans offenders through nftables, spools alerts, serves health.

Stdlib only, Python 3.11. A release is installed as ``/opt/sentry/releases/<version>/`` holding this
package, ``rules/rules.json`` and ``VERSION``; the helpers below locate those files relative to the package so
a running agent always reports (and uses the rules of) the release it was started from, even if
``/opt/sentry/current`` is switched underneath it.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["RELEASE_DIR", "VersionError", "default_rules_path", "read_version"]

# resolve() follows /opt/sentry/current to the concrete release directory.
RELEASE_DIR: Path = Path(__file__).resolve().parent.parent

_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}\Z")


class VersionError(Exception):
    """The release's VERSION file is missing or malformed (the release is broken)."""


def read_version(release_dir: Path = RELEASE_DIR) -> str:
    """Return the release version from ``<release_dir>/VERSION``."""
    path = release_dir / "VERSION"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VersionError(f"cannot read {path}: {exc.strerror or exc}") from exc
    version = text.strip()
    if "\n" in version or not _VERSION_RE.match(version):
        raise VersionError(f"{path} must hold one version string like 1.0.0, got {text[:40]!r}")
    return version


def default_rules_path(release_dir: Path = RELEASE_DIR) -> Path:
    """The rules file shipped with the release."""
    return release_dir / "rules" / "rules.json"
