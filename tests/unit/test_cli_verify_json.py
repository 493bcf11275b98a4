"""``--json`` on ``release verify`` and ``audit verify``, through the console entry point (the one place errors
become exit codes): a real release built and signed into a temporary home and a real sealed evidence bundle,
intact and tampered. A machine reading stdout gets one JSON verdict naming the problems, and the exit code is
the same as without --json (0 intact, 1 otherwise)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator import cli, releases
from orchestrator.audit import bundle
from orchestrator.releases import signing

AGENT = Path(__file__).resolve().parents[2] / "agent"


def run(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """(exit code, the JSON on stdout, stderr) of ``sentryctl --home HOME ARGS``."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["--home", str(home), *args])
    out, err = capsys.readouterr()
    code = exc.value.code
    assert isinstance(code, int)
    return code, json.loads(out), err


@pytest.fixture
def release(tmp_path: Path) -> releases.Release:
    signing.keygen(tmp_path)
    return releases.build_release(AGENT, tmp_path, version="1.4.2", track="hotfix", notes="Tighter ssh rule.")


def test_release_verify_json_intact(
    tmp_path: Path, release: releases.Release, capsys: pytest.CaptureFixture[str]
) -> None:
    for ref in ("1.4.2", str(release.bundle)):
        code, verdict, err = run(tmp_path, capsys, "release", "verify", ref, "--json")
        assert (code, err) == (0, ""), err
        assert verdict["verified"] is True and verdict["release"] == ref
        assert verdict["version"] == "1.4.2" and verdict["track"] == "hotfix"
        assert verdict["sha256"] == hashlib.sha256(release.bundle.read_bytes()).hexdigest()
        assert verdict["signed_by"] == signing.public_fingerprint(tmp_path)
        assert verdict["files"] == len(release.manifest["files"]) and "manifest" not in verdict


def test_release_verify_json_names_a_flipped_byte(
    tmp_path: Path, release: releases.Release, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(release.bundle.read_bytes())
    data[-40] ^= 0xFF
    release.bundle.write_bytes(bytes(data))
    code, verdict, err = run(tmp_path, capsys, "release", "verify", "1.4.2", "--json")
    assert code == 1
    assert verdict["verified"] is False and verdict["release"] == "1.4.2"
    assert verdict["error"].startswith("sentry-agent-1.4.2.tar.gz: signature does not match")
    assert verdict["hint"] and err.startswith("error: sentry-agent-1.4.2.tar.gz: signature does not match")


def test_release_verify_json_names_each_altered_file_of_a_resigned_bundle(
    tmp_path: Path, release: releases.Release, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signed by the right key but not what its manifest lists: every member that differs is named."""
    with tarfile.open(release.bundle, "r:gz") as tar:
        members = [(m, (tar.extractfile(m) or io.BytesIO()).read()) for m in tar.getmembers()]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, original in members:
            content = original + b"\n" if member.name in ("VERSION", releases.RULES) else original
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    forged = tmp_path / "elsewhere" / release.bundle.name
    forged.parent.mkdir()
    forged.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    releases.signature_path(forged).write_bytes(signing.sign(forged.read_bytes(), tmp_path))

    code, verdict, _ = run(tmp_path, capsys, "release", "verify", str(forged), "--json")
    assert code == 1 and verdict["verified"] is False
    assert (
        verdict["error"] == "sentry-agent-1.4.2.tar.gz: VERSION: checksum mismatch; rules/rules.json: checksum mismatch"
    )


def test_release_verify_json_names_an_edited_record(
    tmp_path: Path, release: releases.Release, capsys: pytest.CaptureFixture[str]
) -> None:
    record_path = release.bundle.parent / releases.RELEASE_JSON
    record = json.loads(record_path.read_text())
    record["manifest"]["notes"] = "Nothing to see."
    record_path.write_text(json.dumps(record))
    code, verdict, _ = run(tmp_path, capsys, "release", "verify", "1.4.2", "--json")
    assert code == 1 and verdict["verified"] is False
    assert verdict["error"] == "1.4.2: release.json: notes disagrees with the signed manifest"


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    """A sealed evidence bundle as an audit writes it (MANIFEST.json over every file, signed by the home's key)."""
    signing.keygen(tmp_path)
    root = tmp_path / "audits" / "au-20261123T101500Z-acme-1a2b"
    (root / "inventory").mkdir(parents=True)
    (root / "report.json").write_text('{"result": "drift"}\n')
    (root / "junit.xml").write_text("<testsuites/>\n")
    (root / "inventory" / "hosts.yml").write_text("all: {}\n")
    bundle.seal(root, tmp_path, {"audit": "au-20261123T101500Z-acme-1a2b", "client": "acme"})
    return root


def test_audit_verify_json_intact(tmp_path: Path, evidence: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, verdict, err = run(tmp_path, capsys, "audit", "verify", str(evidence), "--json")
    assert (code, err) == (0, ""), err
    assert verdict == {
        "bundle": str(evidence),
        "ok": True,
        "signature_ok": True,
        "signed_by": signing.public_fingerprint(tmp_path),
        "manifest_sha256": hashlib.sha256((evidence / "MANIFEST.json").read_bytes()).hexdigest(),
        "files": 3,
        "altered": [],
        "missing": [],
        "added": [],
    }


def test_audit_verify_json_names_altered_missing_and_added_files(
    tmp_path: Path, evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (evidence / "report.json").write_text('{"result": "compliant"}\n')
    (evidence / "inventory" / "hosts.yml").unlink()
    (evidence / "notes.txt").write_text("added later\n")
    code, verdict, err = run(tmp_path, capsys, "audit", "verify", str(evidence), "--json")
    assert code == 1
    assert verdict["ok"] is False and verdict["signature_ok"] is True
    assert (verdict["altered"], verdict["missing"], verdict["added"]) == (
        ["report.json"],
        ["inventory/hosts.yml"],
        ["notes.txt"],
    )
    assert err.startswith("error: ") and "3 problem(s)" in err


def test_audit_verify_json_refuses_a_forged_manifest(
    tmp_path: Path, evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = evidence / "MANIFEST.json"
    manifest.write_text(manifest.read_text().replace("acme", "evil"))
    code, verdict, _ = run(tmp_path, capsys, "audit", "verify", str(evidence), "--json")
    assert code == 1
    assert verdict["ok"] is False and verdict["signature_ok"] is False
    assert "signature does not match" in verdict["error"]
