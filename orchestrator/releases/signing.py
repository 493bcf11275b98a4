"""The release signing key: ed25519, kept under the state directory, used to sign and verify release bundles.

Files (``<home>/keys/``):

- ``release-signing.key``: the private key, PEM PKCS8, unencrypted, mode 0600. It is created with ``O_EXCL``
  and never silently replaced; a key file that the group or others may access is refused, as OpenSSH does.
- ``release-signing.pub``: the public key, PEM SubjectPublicKeyInfo. PEM rather than OpenSSH format so that
  anyone can check a bundle with openssl alone, given the detached raw 64-byte signature ``<bundle>.sig``::

      openssl pkeyutl -verify -pubin -inkey release-signing.pub -rawin \\
          -in sentry-agent-1.4.2.tar.gz -sigfile sentry-agent-1.4.2.tar.gz.sig

A key is named by its fingerprint: the sha256 of the raw 32-byte public key, in hex, shown as
``ed25519:<first 16 hex digits>``. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import ReleaseError

if TYPE_CHECKING:
    from ..ledger import Ledger

log = logging.getLogger(__name__)

PRIVATE_NAME = "release-signing.key"
PUBLIC_NAME = "release-signing.pub"
SIGNATURE_SIZE = 64
KEYGEN_HINT = "run 'sentryctl release keygen'"


class SigningKeyError(ReleaseError):
    """Raised when the release signing key is missing, unreadable, unsafe, or would be overwritten."""


class SignatureError(ReleaseError):
    """Raised when a signature is missing, malformed or does not match the signed bytes."""


def keys_dir(home: Path) -> Path:
    return home / "keys"


def private_key_path(home: Path) -> Path:
    return keys_dir(home) / PRIVATE_NAME


def public_key_path(home: Path) -> Path:
    return keys_dir(home) / PUBLIC_NAME


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``ed25519:<first 16 hex of sha256(raw public key)>``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"ed25519:{hashlib.sha256(raw).hexdigest()[:16]}"


def keygen(home: Path, *, force: bool = False, ledger: Ledger | None = None) -> tuple[Path, Path]:
    """Create the release signing key pair; return ``(private_path, public_path)``.

    An existing private key is kept unless ``force``: replacing it means bundles signed with the old key no
    longer verify. The new private key is written to a fresh 0600 file (``O_EXCL``) and moved into place.
    With a ``ledger``, the new key's fingerprint (and the one it replaced) is recorded.
    """
    private, public = private_key_path(home), public_key_path(home)
    previous = _fingerprint_or_none(public)
    if private.exists() and not force:
        raise SigningKeyError(
            f"a release signing key already exists at {private}",
            hint="to replace it pass --force; releases signed with the old key will then fail verification",
        )
    keys_dir(home).mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = private.with_name(f".{PRIVATE_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        if force:
            os.replace(tmp, private)
        else:
            os.link(tmp, private)  # fails if a key appeared meanwhile: never overwrite without --force
    except FileExistsError as exc:
        raise SigningKeyError(f"a release signing key already exists at {private}", hint="pass --force") from exc
    finally:
        tmp.unlink(missing_ok=True)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public.write_bytes(public_pem)
    created = fingerprint(key.public_key())
    log.info("release signing key %s written to %s", created, private)
    if ledger is not None:
        ledger.append_event("release.signing_key_created", None, created, {"replaced": previous})
    return private, public


def _fingerprint_or_none(public: Path) -> str | None:
    try:
        return fingerprint(load_public_key(public))
    except ReleaseError:
        return None


def load_private_key(home: Path) -> Ed25519PrivateKey:
    path = private_key_path(home)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SigningKeyError(f"no release signing key at {path}", hint=KEYGEN_HINT) from None
    if mode & 0o077:
        raise SigningKeyError(
            f"release signing key {path} is accessible by group or others (mode {mode & 0o777:04o})",
            hint=f"chmod 600 {path}",
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"cannot read release signing key {path}: {exc}", hint=KEYGEN_HINT) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"release signing key {path} is not an ed25519 key", hint=KEYGEN_HINT)
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a public key in PEM (as keygen writes it) or OpenSSH format."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"no release signing public key at {path}", hint=KEYGEN_HINT) from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read public key {path}: {exc.strerror}") from exc
    try:
        # Typed as object: the two loaders' return unions differ between cryptography releases.
        key: object = (
            serialization.load_pem_public_key(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else serialization.load_ssh_public_key(data)
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"cannot read public key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"public key {path} is not an ed25519 key")
    return key


def public_fingerprint(home: Path) -> str:
    return fingerprint(load_public_key(public_key_path(home)))


def check_key_pair(home: Path) -> str:
    """The fingerprint of the home's signing key, once the private key is usable and the public key is its own."""
    private = load_private_key(home)
    public = load_public_key(public_key_path(home))
    expected = fingerprint(private.public_key())
    if fingerprint(public) != expected:
        raise SigningKeyError(
            f"public key {public_key_path(home)} ({fingerprint(public)}) does not belong to the private key "
            f"{private_key_path(home)} ({expected})",
            hint="restore the matching release-signing.pub, or replace both with 'sentryctl release keygen --force'",
        )
    return expected


def sign(data: bytes, home: Path) -> bytes:
    """The raw 64-byte ed25519 signature of ``data`` with the home's release signing key."""
    return load_private_key(home).sign(data)


def verify(data: bytes, signature: bytes, public_key_path: Path) -> None:
    """Return quietly when ``signature`` is ``data`` signed by the key at ``public_key_path``; raise otherwise."""
    key = load_public_key(public_key_path)
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"malformed signature: {len(signature)} bytes, an ed25519 signature has {SIGNATURE_SIZE}")
    try:
        key.verify(signature, data)
    except InvalidSignature:
        raise SignatureError(
            f"signature does not match (checked with {fingerprint(key)})",
            hint="the bundle was altered or signed with another key; rebuild it or fetch an intact copy",
        ) from None
