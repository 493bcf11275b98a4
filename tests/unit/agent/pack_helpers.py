"""Signed detection packs for the agent's tests (made with `cryptography`, which the agent itself never uses)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PACK_RULES: dict[str, Any] = {
    "version": "pack-rules-2",
    "rules": [
        {
            "id": "game-bruteforce",
            "source": "game",
            "pattern": r"LOGIN FAILED user=\S+ ip=(?P<ip>[0-9a-fA-F:.]+)",
            "threshold": 2,
            "window_seconds": 60,
            "ban_seconds": 900,
        }
    ],
}


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Signed:
    version: str
    content: bytes
    signature: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class Signer:
    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_hex = raw.hex()

    def pack(
        self,
        version: str = "2026.12.7",
        *,
        rules: dict[str, Any] | None = PACK_RULES,
        blocklist: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Signed:
        body = {
            "format": "sentry-pack/1",
            "version": version,
            "created_at": "2026-12-07T19:00:00Z",
            "rules": rules,
            "blocklist": blocklist if blocklist is not None else [],
            **extra,
        }
        content = canonical(body)
        return Signed(version, content, self.private.sign(content))
