"""The agent's stdlib Ed25519 verifier against RFC 8032 section 7.1 and against signatures of `cryptography`."""

from __future__ import annotations

import os
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sentry_agent import ed25519

# RFC 8032 section 7.1: (public key, message, signature), TEST 1, 2, 3 and SHA(abc).
VECTORS = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
        "454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]


@pytest.mark.parametrize(("key", "msg", "sig"), VECTORS)
def test_rfc8032_vectors_verify_and_any_changed_bit_does_not(key: str, msg: str, sig: str) -> None:
    k, m, s = bytes.fromhex(key), bytes.fromhex(msg), bytes.fromhex(sig)
    assert ed25519.verify(k, m, s)
    assert not ed25519.verify(k, m + b"x", s)
    for i in (0, 31, 32, 63):  # R and S halves
        bad = bytearray(s)
        bad[i] ^= 1
        assert not ed25519.verify(k, m, bytes(bad))
    bad_key = bytearray(k)
    bad_key[0] ^= 1
    assert not ed25519.verify(bytes(bad_key), m, s)


def test_signatures_made_by_cryptography_verify() -> None:
    for _ in range(20):
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        message = os.urandom(int.from_bytes(os.urandom(2), "big") % 2000)
        signature = private.sign(message)
        assert ed25519.verify(public, message, signature)
        other = (
            Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        assert not ed25519.verify(other, message, signature)


def test_non_canonical_s_is_refused() -> None:
    key, msg, sig = (bytes.fromhex(v) for v in VECTORS[0])
    s = int.from_bytes(sig[32:], "little")
    # S + L satisfies the same equation; a verifier that does not check S < L accepts it (malleability).
    malleable = sig[:32] + (s + ed25519.L).to_bytes(32, "little")
    assert not ed25519.verify(key, msg, malleable)


def test_malformed_points_and_lengths_are_refused() -> None:
    key, msg, sig = (bytes.fromhex(v) for v in VECTORS[0])
    # y >= p (non-canonical encoding of a field element).
    y_too_big = (ed25519.P + 1).to_bytes(32, "little")
    assert not ed25519.verify(y_too_big, msg, sig)
    assert not ed25519.verify(key, msg, y_too_big + sig[32:])
    # A y with no x on the curve: y = 2 gives u/v a non-square.
    not_on_curve = (2).to_bytes(32, "little")
    assert ed25519._decode_point(not_on_curve) is None
    assert not ed25519.verify(not_on_curve, msg, sig)
    # x = 0 with the sign bit set (y = 1 is the identity).
    assert not ed25519.verify(key, msg, ((1 << 255) | 1).to_bytes(32, "little") + sig[32:])
    assert not ed25519.verify(key[:31], msg, sig)
    assert not ed25519.verify(key, msg, sig[:63])


def test_a_pack_sized_message_verifies_well_under_50_ms() -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    message = os.urandom(1_000_000)  # a blocklist of 10000 entries is about this size
    signature = private.sign(message)
    best = min(_timed(lambda: ed25519.verify(public, message, signature)) for _ in range(5))
    assert best < 0.05, f"verify took {best * 1000:.1f} ms"


def _timed(fn: object) -> float:
    start = time.perf_counter()
    assert fn()  # type: ignore[operator]
    return time.perf_counter() - start
