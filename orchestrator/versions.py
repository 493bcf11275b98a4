"""Release version ordering: ``MAJOR.MINOR.PATCH`` with an optional ``-prerelease`` (and ignored ``+build``).

Semantic-versioning precedence: numbers compare numerically (``1.10.0 > 1.9.0``), a prerelease sorts before
its release (``1.2.0-rc1 < 1.2.0``), prerelease identifiers compare dot by dot with numeric ones before
alphanumeric ones. One deliberate difference: inside an identifier, digit runs compare as numbers, so
``rc2 < rc10`` (plain SemVer would order them as text). Build metadata after ``+`` never affects the order.
"""

from __future__ import annotations

import re

from .errors import VersionError

# Accepts at least what ``releases.validate_version`` accepts, so every built release can be ordered.
VERSION_RE = re.compile(
    r"^(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
CHUNK_RE = re.compile(r"\d+|\D+")

# One comparable chunk of a prerelease identifier: (0, number, "") for digits, (1, 0, text) otherwise, so
# tuples never compare an int with a str and numeric parts sort first.
Chunk = tuple[int, int, str]
VersionKey = tuple[int, int, int, int, tuple[tuple[Chunk, ...], ...]]


def _identifier_key(identifier: str) -> tuple[Chunk, ...]:
    return tuple((0, int(c), "") if c.isdigit() else (1, 0, c) for c in CHUNK_RE.findall(identifier))


def version_key(version: str) -> VersionKey:
    """A tuple that sorts versions by precedence; raises :class:`VersionError` for anything else."""
    match = VERSION_RE.match(version) if isinstance(version, str) else None
    if match is None:
        raise VersionError(
            f"unreadable release version {version!r}", hint="use MAJOR.MINOR.PATCH[-prerelease], e.g. 1.4.2-rc1"
        )
    pre = match["pre"]
    # A release (no prerelease) sorts after every prerelease of the same numbers: the flag is 1 for it.
    prerelease = tuple(_identifier_key(p) for p in pre.split(".")) if pre else ()
    return int(match["major"]), int(match["minor"]), int(match["patch"]), 0 if pre else 1, prerelease


def is_valid(version: str) -> bool:
    return isinstance(version, str) and VERSION_RE.match(version) is not None


def compare(a: str, b: str) -> int:
    """-1 if ``a`` precedes ``b``, 0 if they have the same precedence, 1 if ``a`` is newer."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)
