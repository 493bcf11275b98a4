"""Release bundles are deterministic, carry a manifest of every file's checksum, and are signed into an immutable
catalog; verification refuses any bundle that is not exactly what was signed."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import VersionError
from orchestrator.releases import (
    Release,
    ReleaseError,
    agent_extravars,
    build_bundle,
    build_release,
    get_release,
    list_releases,
    signature_path,
    signing,
    verify_release,
    version_key,
)

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


# ------------------------------------------------------------------------------------ release metadata, catalog
CREATED = "2026-01-31T12:00:00Z"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    signing.keygen(home)
    return home


def release(home: Path, version: str = "1.2.3", track: str = "hotfix", **kwargs: Any) -> Release:
    return build_release(AGENT, home, version=version, track=track, created=CREATED, **kwargs)


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def repack(bundle: Path, home: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    """Rewrite the bundle with these members and sign it again with the home's key: a forgery by a key holder
    who skipped the manifest, or a bundle built by a buggy tool."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, data in entries:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    bundle.write_bytes(raw.getvalue())
    signature_path(bundle).write_bytes(signing.sign(raw.getvalue(), home))


def entries_of(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [(tarfile.TarInfo(name), data) for name, data in members(bundle).items()]


def test_manifest_carries_release_fields_and_stays_deterministic(tmp_path: Path) -> None:
    fields: dict[str, Any] = {
        "created": "2026-01-31T13:00:00+01:00",
        "notes": "Faster bans.\n\n",
        "requires_training": "ids-tuning-201",
        "min_previous_version": "1.9.0",
    }
    a = build_bundle(AGENT, tmp_path / "a", version="1.10.0", track="feature", **fields)
    b = build_bundle(AGENT, tmp_path / "b", version="1.10.0", track="feature", **fields)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert {k: a.manifest[k] for k in fields} == {
        "created": "2026-01-31T12:00:00Z",  # normalised to UTC
        "notes": "Faster bans.",
        "requires_training": "ids-tuning-201",
        "min_previous_version": "1.9.0",
    }
    later = build_bundle(
        AGENT, tmp_path / "c", version="1.10.0", track="feature", **{**fields, "created": "2026-02-01T00:00:00Z"}
    )
    assert later.sha256 != a.sha256
    plain = build_bundle(AGENT, tmp_path / "d", version="1.10.0")
    assert [plain.manifest[k] for k in fields] == [None] * 4  # no clock read: dev bundles stay deterministic


def test_build_release_lays_out_the_catalog(home: Path) -> None:
    built = release(home, notes="Fixes the ssh rule.\n", min_previous_version="1.2.0")
    folder = home / "releases" / "catalog" / "1.2.3"
    assert built.bundle == folder / "sentry-agent-1.2.3.tar.gz"
    assert built.signature == folder / "sentry-agent-1.2.3.tar.gz.sig"
    assert sorted(p.name for p in folder.iterdir()) == [
        "release.json",
        "sentry-agent-1.2.3.tar.gz",
        "sentry-agent-1.2.3.tar.gz.sig",
    ]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["1.2.3"]  # no half-built leftovers
    signing.verify(built.bundle.read_bytes(), built.signature.read_bytes(), signing.public_key_path(home))
    record = json.loads((folder / "release.json").read_text())
    assert record == {
        "manifest": json.loads(members(built.bundle)["MANIFEST.json"]),
        "bundle": "sentry-agent-1.2.3.tar.gz",
        "sha256": hashlib.sha256(built.bundle.read_bytes()).hexdigest(),
        "signature": "sentry-agent-1.2.3.tar.gz.sig",
        "signed_by": signing.public_fingerprint(home),
    }
    assert (built.version, built.track, built.created) == ("1.2.3", "hotfix", CREATED)
    assert (built.notes, built.min_previous_version, built.requires_training) == ("Fixes the ssh rule.", "1.2.0", None)
    assert get_release(home, "1.2.3") == built
    assert agent_extravars(built)["sentry_agent_bundle_sha256"] == built.sha256


def test_same_inputs_same_bundle_whoever_signs(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    signing.keygen(a)
    signing.keygen(b)
    ra, rb = release(a), release(b)
    assert ra.sha256 == rb.sha256
    assert ra.signature.read_bytes() != rb.signature.read_bytes()


def test_versions_are_immutable(home: Path) -> None:
    built = release(home)
    with pytest.raises(ReleaseError, match=r"release 1\.2\.3 already exists in the catalog.*immutable"):
        release(home, notes="sneaky change")
    assert verify_release("1.2.3", home).sha256 == built.sha256


def test_requires_training_only_for_feature_releases(home: Path) -> None:
    with pytest.raises(ReleaseError, match="a hotfix release cannot require training") as exc:
        release(home, requires_training="ids-tuning-201")
    assert exc.value.hint is not None and "--track feature" in exc.value.hint
    with pytest.raises(ReleaseError, match="invalid training module name"):
        release(home, track="feature", requires_training="../etc")
    assert release(home, track="feature", requires_training="ids-tuning-201").requires_training == "ids-tuning-201"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"track": "canary"}, "unknown release track 'canary'"),
        ({"min_previous_version": "1.2.3"}, "min_previous_version 1.2.3 is not older than the release 1.2.3"),
        ({"min_previous_version": "1.10.0"}, "is not older than"),
        ({"min_previous_version": "latest"}, "invalid release version 'latest'"),
        ({"created": "2026-01-31T12:00:00"}, "has no timezone"),
        ({"created": "yesterday"}, "invalid creation time"),
    ],
)
def test_bad_release_fields_are_refused_and_leave_nothing(home: Path, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"version": "1.2.3", "track": "hotfix", "created": CREATED, **kwargs}
    with pytest.raises(ReleaseError, match=re.escape(message)):
        build_release(AGENT, home, **args)
    catalog = home / "releases" / "catalog"
    assert not catalog.exists() or list(catalog.iterdir()) == []


def test_no_key_no_release(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="no release signing key") as exc:
        release(tmp_path)
    assert exc.value.hint == "run 'sentryctl release keygen'"
    assert list_releases(tmp_path) == []


def test_rules_file_replaces_the_bundled_rules(home: Path, tmp_path: Path) -> None:
    rules = json.loads((AGENT / "rules" / "rules.json").read_text())
    rules.update(version="2026.12.1", self_test="fail")  # the demo's deliberately broken release
    path = tmp_path / "broken-rules.json"
    path.write_text(json.dumps(rules))
    built = release(home, rules_file=path)
    assert members(built.bundle)["rules/rules.json"] == path.read_bytes()
    assert built.manifest["files"]["rules/rules.json"] == hashlib.sha256(path.read_bytes()).hexdigest()
    verify_release("1.2.3", home)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"rules": []}', "'version' must be a non-empty string"),
        ('{"version": "1", "rules": {}}', "'rules' must be a list"),
        ('{"version": "1", "rules": [], "self_test": "maybe"}', "'self_test' must be"),
    ],
)
def test_bad_rules_files_are_refused(home: Path, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(content)
    with pytest.raises(ReleaseError, match=message):
        release(home, rules_file=path)
    assert list_releases(home) == []


def test_list_is_in_semantic_version_order(home: Path) -> None:
    for version in ("1.10.0", "1.9.0", "1.2.0", "1.2.0-rc1", "0.9.0"):
        release(home, version=version)
    assert [r.version for r in list_releases(home)] == ["0.9.0", "1.2.0-rc1", "1.2.0", "1.9.0", "1.10.0"]


def test_unknown_release_points_at_the_list(home: Path) -> None:
    with pytest.raises(ReleaseError, match=r"no release 4\.0\.0 in the catalog") as exc:
        get_release(home, "4.0.0")
    assert exc.value.hint == "see 'sentryctl release list'"
    with pytest.raises(ReleaseError, match=r"no release 4\.0\.0 in the catalog"):
        verify_release("4.0.0", home)
    with pytest.raises(ReleaseError, match="no release or bundle file"):
        verify_release(str(home / "nothing.tar.gz"), home)


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        ("1.9.0", "1.10.0"),
        ("1.2.0-rc1", "1.2.0"),
        ("1.2.0-rc.2", "1.2.0-rc.10"),
        ("1.2.0-rc2", "1.2.0-rc10"),
        ("1.2.0-alpha", "1.2.0-beta"),
        ("1.2.0-1", "1.2.0-alpha"),  # numeric identifiers before alphanumeric ones
        ("1.2.0-alpha", "1.2.0-alpha.1"),  # a longer identifier list is newer
        ("0.99.99", "1.0.0"),
        ("1.0.9", "1.0.10"),
        ("2.0.0-rc1", "2.0.0"),
    ],
)
def test_version_key_orders_semantically(smaller: str, larger: str) -> None:
    assert version_key(smaller) < version_key(larger)


def test_version_key_refuses_build_metadata_and_junk() -> None:
    with pytest.raises(VersionError, match="unreadable release version"):
        version_key("1.2.3+build.7")  # it would rank equal to 1.2.3
    with pytest.raises(VersionError, match="unreadable release version"):
        version_key("v1.2.3")


# ------------------------------------------------------------------------------------------------ verification
def test_verify_accepts_a_version_a_folder_or_a_bundle(home: Path, tmp_path: Path) -> None:
    built = release(home)
    assert verify_release("1.2.3", home) == built
    assert verify_release(built.bundle.parent, home) == built
    assert verify_release(str(built.bundle), home) == built
    copy = tmp_path / "elsewhere" / built.bundle.name  # a bundle handed over with its .sig, no catalog record
    copy.parent.mkdir()
    shutil.copy(built.bundle, copy)
    shutil.copy(built.signature, signature_path(copy))
    assert verify_release(copy, home).sha256 == built.sha256


def test_verify_never_touches_the_network(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = release(home)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("verification tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    verify_release("1.2.3", home)
    built.signature.unlink()
    with pytest.raises(ReleaseError, match="no signature file"):
        verify_release("1.2.3", home)


def test_a_flipped_byte_breaks_the_signature(home: Path) -> None:
    built = release(home)
    data = bytearray(built.bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    built.bundle.write_bytes(bytes(data))
    with pytest.raises(ReleaseError, match=r"sentry-agent-1\.2\.3\.tar\.gz: signature does not match"):
        verify_release("1.2.3", home)


def test_a_missing_signature_is_refused(home: Path) -> None:
    built = release(home)
    built.signature.unlink()
    with pytest.raises(signing.SignatureError, match=r"no signature file \(sentry-agent-1\.2\.3\.tar\.gz\.sig\)"):
        verify_release(built.bundle, home)


def test_a_release_signed_before_the_key_was_replaced_says_so(home: Path) -> None:
    built = release(home)
    signing.keygen(home, force=True)
    with pytest.raises(ReleaseError, match=f"signed by {built.signed_by}, the signing key is now ed25519:"):
        verify_release("1.2.3", home)


def test_a_resigned_bundle_with_an_altered_file_names_the_file(home: Path) -> None:
    built = release(home)
    entries = [
        (info, data.replace(b'"threshold": 5', b'"threshold": 500') if info.name == "rules/rules.json" else data)
        for info, data in entries_of(built.bundle)
    ]
    repack(built.bundle, home, entries)
    with pytest.raises(ReleaseError, match=r"rules/rules\.json: checksum mismatch"):
        verify_release(built.bundle, home)  # the signature is fine, the manifest is not


def test_extra_and_missing_files_are_named(home: Path) -> None:
    built = release(home)
    entries = [e for e in entries_of(built.bundle) if e[0].name != "sentry_agent/ban.py"]
    repack(built.bundle, home, [*entries, (tarfile.TarInfo("sentry_agent/backdoor.py"), b"import os\n")])
    with pytest.raises(ReleaseError) as exc:
        verify_release("1.2.3", home)
    assert "unexpected file sentry_agent/backdoor.py" in exc.value.message
    assert "missing file sentry_agent/ban.py" in exc.value.message


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (tarfile.TarInfo("../evil.py"), "unsafe member ../evil.py: parent directory reference"),
        (tarfile.TarInfo("rules/../../evil.py"), "parent directory reference"),
        (tarfile.TarInfo("/etc/cron.d/evil"), "absolute or empty path"),
        (_link("rules/link.json", "/etc/shadow"), "unsafe member rules/link.json: link, not a regular file"),
    ],
)
def test_unsafe_members_are_refused(home: Path, member: tarfile.TarInfo, message: str) -> None:
    built = release(home)
    repack(built.bundle, home, [*entries_of(built.bundle), (member, b"" if member.issym() else b"x")])
    with pytest.raises(ReleaseError, match=re.escape(message)):
        verify_release("1.2.3", home)


def test_an_edited_catalog_record_is_caught(home: Path) -> None:
    release(home, version="2.0.0", track="feature", requires_training="ids-tuning-201")
    path = home / "releases" / "catalog" / "2.0.0" / "release.json"
    record = json.loads(path.read_text())
    record["manifest"].update(track="hotfix", requires_training=None)  # an attempt to skip the training gate
    path.write_text(json.dumps(record))
    assert get_release(home, "2.0.0").track == "hotfix"  # the unverified index says so...
    with pytest.raises(ReleaseError) as exc:  # ...the gate does not believe it
        verify_release("2.0.0", home)
    assert "release.json: requires_training disagrees with the signed manifest" in exc.value.message
    assert "release.json: track disagrees with the signed manifest" in exc.value.message


def test_a_renamed_bundle_is_caught(home: Path, tmp_path: Path) -> None:
    built = release(home)
    renamed = tmp_path / "sentry-agent-1.2.4.tar.gz"
    shutil.copy(built.bundle, renamed)
    shutil.copy(built.signature, signature_path(renamed))
    with pytest.raises(ReleaseError, match="file name disagrees with its manifest"):
        verify_release(renamed, home)


def test_garbage_with_a_valid_signature_is_refused(home: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "sentry-agent-1.2.3.tar.gz"
    bundle.write_bytes(b"not a tarball")
    signature_path(bundle).write_bytes(signing.sign(bundle.read_bytes(), home))
    with pytest.raises(ReleaseError, match="not a readable gzip tarball"):
        verify_release(bundle, home)
