"""The release signing key: safe on disk, never silently replaced, and signatures that catch any change."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator.releases import ReleaseError, signing


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keygen_writes_a_private_0600_pkcs8_key_and_a_pem_public_key(tmp_path: Path) -> None:
    private, public = signing.keygen(tmp_path)
    assert private == tmp_path / "keys" / "release-signing.key"
    assert public == tmp_path / "keys" / "release-signing.pub"
    assert mode(private) == 0o600
    assert mode(private.parent) == 0o700
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert not list(private.parent.glob(".*"))  # no temporary file left behind

    key = signing.load_public_key(public)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    fingerprint = signing.public_fingerprint(tmp_path)
    assert re.fullmatch(r"ed25519:[0-9a-f]{16}", fingerprint)
    assert fingerprint == f"ed25519:{hashlib.sha256(raw).hexdigest()[:16]}"
    assert signing.check_key_pair(tmp_path) == fingerprint


def test_keygen_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    private, _ = signing.keygen(tmp_path)
    before, first = private.read_bytes(), signing.public_fingerprint(tmp_path)
    with pytest.raises(signing.SigningKeyError, match="already exists") as exc:
        signing.keygen(tmp_path)
    assert exc.value.hint is not None and "--force" in exc.value.hint
    assert private.read_bytes() == before

    signing.keygen(tmp_path, force=True)
    assert private.read_bytes() != before
    assert signing.public_fingerprint(tmp_path) != first
    assert mode(private) == 0o600


@pytest.mark.parametrize("unsafe", [0o640, 0o604, 0o660, 0o610])
def test_a_key_that_group_or_others_can_access_is_refused(tmp_path: Path, unsafe: int) -> None:
    private, _ = signing.keygen(tmp_path)
    private.chmod(unsafe)
    with pytest.raises(signing.SigningKeyError, match="accessible by group or others") as exc:
        signing.sign(b"data", tmp_path)
    assert exc.value.hint == f"chmod 600 {private}"
    private.chmod(0o600)
    assert len(signing.sign(b"data", tmp_path)) == 64


def test_sign_verify_round_trip_and_any_change_is_caught(tmp_path: Path) -> None:
    _, public = signing.keygen(tmp_path)
    data = b"the exact bundle bytes" * 100
    sig = signing.sign(data, tmp_path)
    assert sig == signing.sign(data, tmp_path)  # ed25519 is deterministic
    signing.verify(data, sig, public)

    flipped = bytearray(data)
    flipped[7] ^= 0x01
    with pytest.raises(signing.SignatureError, match="signature does not match"):
        signing.verify(bytes(flipped), sig, public)
    with pytest.raises(signing.SignatureError, match="signature does not match"):
        signing.verify(data, bytes([sig[0] ^ 0x80]) + sig[1:], public)
    with pytest.raises(signing.SignatureError, match="malformed signature: 0 bytes"):
        signing.verify(data, b"", public)


def test_another_key_does_not_verify(tmp_path: Path) -> None:
    signing.keygen(tmp_path / "a")
    _, other = signing.keygen(tmp_path / "b")
    sig = signing.sign(b"data", tmp_path / "a")
    with pytest.raises(signing.SignatureError, match="signature does not match"):
        signing.verify(b"data", sig, other)


def test_an_openssh_public_key_is_accepted(tmp_path: Path) -> None:
    signing.keygen(tmp_path)
    key = signing.load_private_key(tmp_path)
    ssh = tmp_path / "release.pub.ssh"
    ssh.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    signing.verify(b"data", signing.sign(b"data", tmp_path), ssh)


def test_missing_keys_say_to_run_keygen(tmp_path: Path) -> None:
    with pytest.raises(signing.SigningKeyError, match="no release signing key") as exc:
        signing.sign(b"data", tmp_path)
    assert exc.value.hint == "run 'sentryctl release keygen'"
    with pytest.raises(signing.SigningKeyError, match="no release signing public key") as exc:
        signing.verify(b"data", b"x" * 64, signing.public_key_path(tmp_path))
    assert exc.value.hint == "run 'sentryctl release keygen'"
    assert isinstance(exc.value, ReleaseError)


def test_a_public_key_of_another_pair_is_refused_before_signing(tmp_path: Path) -> None:
    signing.keygen(tmp_path)
    stranger = Ed25519PrivateKey.generate().public_key()
    signing.public_key_path(tmp_path).write_bytes(
        stranger.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(signing.SigningKeyError, match="does not belong to the private key"):
        signing.check_key_pair(tmp_path)


def test_a_key_that_is_not_ed25519_or_not_a_key_is_refused(tmp_path: Path) -> None:
    private, public = signing.keygen(tmp_path)
    private.write_bytes(b"not a key")
    with pytest.raises(signing.SigningKeyError, match="cannot read release signing key"):
        signing.sign(b"data", tmp_path)
    public.write_text("garbage\n")
    with pytest.raises(signing.SigningKeyError, match="cannot read public key"):
        signing.verify(b"data", b"x" * 64, public)
