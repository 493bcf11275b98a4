"""One version grammar: canonical SemVer, one spelling per rank, full-string matches only."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import releases, versions
from orchestrator.cli import cli
from orchestrator.errors import VersionError

REFUSED = ["01.0.0", "1.00.0", "1.0.00", "1.0.0+x", "1.0.0-rc1+b7", "1.0.0\n", "1.0.0 ", "1.2.0-rc01", "1.0.0-00",
           "1.0.0-", "1.0.0-a..b", "v1.0.0", "1.0", ""]  # fmt: skip
ACCEPTED = ["0.0.0", "1.0.0", "10.20.30", "1.2.0-rc1", "1.2.0-rc10", "1.0.0-0", "1.0.0-alpha.1", "1.0.0-x-y"]


@pytest.mark.parametrize("version", REFUSED)
def test_non_canonical_versions_are_refused_everywhere(version: str) -> None:
    assert not versions.is_valid(version)
    with pytest.raises(VersionError, match="unreadable release version"):
        versions.version_key(version)
    with pytest.raises(releases.ReleaseError, match="invalid release version"):
        releases.validate_version(version)


@pytest.mark.parametrize("version", ACCEPTED)
def test_canonical_versions_are_accepted(version: str) -> None:
    assert versions.is_valid(version) and releases.validate_version(version) == version


def test_equal_rank_means_equal_spelling() -> None:
    ordered = sorted(ACCEPTED, key=versions.version_key)
    keys = [versions.version_key(v) for v in ordered]
    assert len(set(keys)) == len(keys)
    assert ordered.index("1.2.0-rc1") < ordered.index("1.2.0-rc10")


@pytest.mark.parametrize("version", ["01.0.0", "1.0.0+x", "1.0.0\n"])
def test_release_build_says_invalid_version_in_one_line(tmp_path: Path, version: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--home", str(tmp_path), "release", "build", "--version", version, "--track", "hotfix"]
    )
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") <= 1 and "invalid release version" in str(result.exception or result.output)
