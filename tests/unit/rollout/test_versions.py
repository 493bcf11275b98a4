"""Release version ordering."""

from __future__ import annotations

import pytest

from orchestrator.errors import VersionError
from orchestrator.rollout import compare, version_key


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.9.0", "1.10.0"),
        ("1.2.9", "1.3.0"),
        ("0.99.99", "1.0.0"),
        ("1.2.0-rc1", "1.2.0"),
        ("1.2.0-alpha", "1.2.0-beta"),
        ("1.2.0-rc2", "1.2.0-rc10"),
        ("1.2.0-1", "1.2.0-alpha"),  # numeric identifiers sort before alphanumeric ones
        ("1.2.0-rc.1", "1.2.0-rc.1.1"),  # more identifiers sort later
        ("1.2.0-rc.2", "1.2.0-rc.10"),
        ("1.1.9", "1.2.0-rc1"),
    ],
)
def test_order(older: str, newer: str) -> None:
    assert compare(older, newer) == -1
    assert compare(newer, older) == 1
    assert version_key(older) < version_key(newer)


def test_equal_and_build_metadata_refused() -> None:
    assert compare("1.4.2", "1.4.2") == 0
    # Build metadata would rank equal to 1.4.2 and so be a second 1.4.2: not a version (see versions.py).
    with pytest.raises(VersionError):
        compare("1.4.2+build.7", "1.4.2")


def test_sorting_a_list() -> None:
    versions = ["1.10.0", "1.2.0", "1.2.0-rc1", "1.9.3", "2.0.0-beta", "1.2.0-rc10", "1.2.0-rc2"]
    assert sorted(versions, key=version_key) == [
        "1.2.0-rc1",
        "1.2.0-rc2",
        "1.2.0-rc10",
        "1.2.0",
        "1.9.3",
        "1.10.0",
        "2.0.0-beta",
    ]


@pytest.mark.parametrize("bad", ["", "1.2", "1.2.3.4", "v1.2.3", "1.2.x", "1.2.3-", "1.2.3 "])
def test_unreadable_versions_raise(bad: str) -> None:
    with pytest.raises(VersionError, match="unreadable release version") as info:
        version_key(bad)
    assert info.value.hint
