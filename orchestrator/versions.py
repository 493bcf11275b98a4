"""Release versions: the one grammar (canonical SemVer ``MAJOR.MINOR.PATCH[-prerelease]``) and its ordering.

Semantic-versioning precedence: numbers compare numerically (``1.10.0 > 1.9.0``), a prerelease sorts before
its release (``1.2.0-rc1 < 1.2.0``), prerelease identifiers compare dot by dot with numeric ones before
alphanumeric ones. One deliberate difference: inside an identifier, digit runs compare as numbers, so
``rc2 < rc10`` (plain SemVer would order them as text).

Two versions that rank equal are the same version, so the grammar admits exactly one spelling of each rank:
no leading zeros (``01.0.0``, ``1.0.0-rc01``), and no ``+build`` metadata (SemVer ignores it when ranking, so
``1.0.0+x`` would be a second release of 1.0.0). Matching is full-string: a trailing newline is not a version.
"""

from __future__ import annotations

import re

from .errors import VersionError

_NUMBER = r"(?:0|[1-9]\d*)"
# A prerelease identifier: digits without a leading zero, or letters/dashes with digit runs that have none
# (rc2, rc10, beta-2; not rc02, which would rank equal to rc2).
_IDENT = r"(?:0|[1-9]\d*|(?:[A-Za-z-]|(?<![0-9])(?:0|[1-9]\d*)(?=[A-Za-z-]))(?:[A-Za-z-]|(?<![0-9])(?:0|[1-9]\d*))*)"
VERSION_RE = re.compile(
    rf"(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
)
CHUNK_RE = re.compile(r"\d+|\D+")
HINT = "use MAJOR.MINOR.PATCH[-prerelease] without leading zeros or +build, e.g. 1.4.2 or 1.4.2-rc1"

# One comparable chunk of a prerelease identifier: (0, number, "") for digits, (1, 0, text) otherwise, so
# tuples never compare an int with a str and numeric parts sort first.
Chunk = tuple[int, int, str]
VersionKey = tuple[int, int, int, int, tuple[tuple[Chunk, ...], ...]]


def _identifier_key(identifier: str) -> tuple[Chunk, ...]:
    return tuple((0, int(c), "") if c.isdigit() else (1, 0, c) for c in CHUNK_RE.findall(identifier))


def version_key(version: str) -> VersionKey:
    """A tuple that sorts versions by precedence; raises :class:`VersionError` for anything else."""
    match = VERSION_RE.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise VersionError(f"unreadable release version {version!r}", hint=HINT)
    pre = match["pre"]
    # A release (no prerelease) sorts after every prerelease of the same numbers: the flag is 1 for it.
    prerelease = tuple(_identifier_key(p) for p in pre.split(".")) if pre else ()
    return int(match["major"]), int(match["minor"]), int(match["patch"]), 0 if pre else 1, prerelease


def is_valid(version: object) -> bool:
    return isinstance(version, str) and VERSION_RE.fullmatch(version) is not None


def compare(a: str, b: str) -> int:
    """-1 if ``a`` precedes ``b``, 0 if they have the same precedence, 1 if ``a`` is newer."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)
