"""Ed25519 signature verification (RFC 8032, section 5.1.7), stdlib only.

The agent checks detection packs against Sentry's release signing key and must not depend on a third-party
crypto package, so this is the verification half of Ed25519 written from the RFC's math: points on the twisted
Edwards curve -x^2 + y^2 = 1 + d x^2 y^2 over GF(p), p = 2^255 - 19, in extended coordinates (X:Y:Z:T) with
x = X/Z, y = Y/Z, x*y = T/Z (RFC 8032 section 5.1.4).

Only public data goes through it (key, message, signature), so it need not be constant-time. What it refuses:

- a signature that is not 64 bytes or a key that is not 32 bytes;
- a non-canonical S (S >= L): otherwise S and S + L would both verify (signature malleability);
- an encoding of R or A whose y is not below p, or that is not a point on the curve (RFC 8032 5.1.3).

The check is the cofactorless equation [S]B == R + [k]A (RFC 8032 allows either; this one is what
OpenSSL/``cryptography`` use, so both agree on every signature Sentry makes).
"""

from __future__ import annotations

import hashlib

__all__ = ["verify"]

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # order of the base point
D = (-121665 * pow(121666, -1, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)  # a square root of -1 mod p

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)

_IDENTITY: Point = (0, 1, 1, 0)


def _add(p: Point, q: Point) -> Point:
    # RFC 8032 section 5.1.4, addition for a = -1 (complete: also valid for doubling).
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = b - a, dd - c, dd + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p: Point) -> Point:
    # RFC 8032 section 5.1.4, doubling (cheaper than _add(p, p)).
    x1, y1, z1, _ = p
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1) % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _recover_x(y: int, sign: int) -> int | None:
    """x from y and the sign bit (RFC 8032 section 5.1.3); None when no such point exists."""
    if y >= P:
        return None
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    # x = (u/v)^((p+3)/8) computed as u v^3 (u v^7)^((p-5)/8).
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    vx2 = v * x * x % P
    if vx2 == u:
        pass
    elif vx2 == (-u) % P:
        x = x * SQRT_M1 % P
    else:
        return None
    if x == 0 and sign:
        return None  # x = 0 has no negative: a non-canonical encoding
    if x & 1 != sign:
        x = P - x
    return x


def _decode_point(data: bytes) -> Point | None:
    n = int.from_bytes(data, "little")
    y = n & ((1 << 255) - 1)
    x = _recover_x(y, n >> 255)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _equal(p: Point, q: Point) -> bool:
    # X1/Z1 == X2/Z2 and Y1/Z1 == Y2/Z2, without inversions.
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


_BY = 4 * pow(5, -1, P) % P
_BASE: Point = (_recover_x(_BY, 0) or 0, _BY, 1, (_recover_x(_BY, 0) or 0) * _BY % P)


def _base_table() -> list[Point]:
    """[2^i]B for i in 0..255: the fixed base makes [S]B a sum of table entries (no doublings at verify time)."""
    table, point = [], _BASE
    for _ in range(256):
        table.append(point)
        point = _double(point)
    return table


_BASE_TABLE = _base_table()


def _mul_base(s: int) -> Point:
    q = _IDENTITY
    i = 0
    while s:
        if s & 1:
            q = _add(q, _BASE_TABLE[i])
        s >>= 1
        i += 1
    return q


def _mul(s: int, p: Point) -> Point:
    """[s]P by a 4-bit fixed window (public scalars only)."""
    window = [_IDENTITY, p]
    for _ in range(14):
        window.append(_add(window[-1], p))
    q = _IDENTITY
    for shift in range((s.bit_length() + 3) // 4 * 4 - 4, -4, -4):
        q = _double(_double(_double(_double(q))))
        digit = (s >> shift) & 15
        if digit:
            q = _add(q, window[digit])
    return q


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` (64 bytes) is a valid Ed25519 signature of ``message`` under ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public_key)
    if a is None:
        return False
    r_bytes = signature[:32]
    r = _decode_point(r_bytes)
    if r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(r_bytes + public_key + message).digest(), "little") % L
    return _equal(_mul_base(s), _add(r, _mul(k, a)))
