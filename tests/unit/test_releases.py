"""Release bundles are deterministic and carry a manifest of every file's checksum."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from orchestrator.releases import ReleaseError, build_bundle

AGENT = Path(__file__).resolve().parents[2] / "agent"


def test_same_sources_same_bytes(tmp_path: Path) -> None:
    a = build_bundle(AGENT, tmp_path / "a", version="1.2.3")
    b = build_bundle(AGENT, tmp_path / "b", version="1.2.3")
    assert a.sha256 == b.sha256
    assert a.path.read_bytes() == b.path.read_bytes()
    c = build_bundle(AGENT, tmp_path / "c", version="1.2.4")
    assert c.sha256 != a.sha256


def test_manifest_lists_every_file_with_its_checksum(tmp_path: Path) -> None:
    bundle = build_bundle(AGENT, tmp_path, version="2.0.0", track="feature", overrides={"rules/extra.json": b"{}"})
    with tarfile.open(bundle.path) as tar:
        names = sorted(m.name for m in tar.getmembers())
        manifest = json.loads(tar.extractfile("MANIFEST.json").read())  # type: ignore[union-attr]
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(tar.extractfile(name).read()).hexdigest() == digest  # type: ignore[union-attr]
        assert tar.extractfile("VERSION").read() == b"2.0.0\n"  # type: ignore[union-attr]
    assert sorted([*manifest["files"], "MANIFEST.json"]) == names
    assert manifest["track"] == "feature" and manifest["version"] == "2.0.0"
    assert "rules/extra.json" in names and "sentry_agent/__main__.py" in names
    assert not any("__pycache__" in n for n in names)


@pytest.mark.parametrize("version", ["1", "v1.2.3", "1.2", "1.2.3;rm"])
def test_bad_versions_are_refused(tmp_path: Path, version: str) -> None:
    with pytest.raises(ReleaseError, match="invalid release version"):
        build_bundle(AGENT, tmp_path, version=version)


def test_not_an_agent_tree(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="does not look like the agent source"):
        build_bundle(tmp_path, tmp_path / "out")
