"""Pinning files and fingerprints (no network)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from orchestrator import remote
from orchestrator.inventory import Host, Inventory


def test_fingerprint_matches_openssh_format() -> None:
    blob = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00" * 36).decode()
    expected = "SHA256:" + base64.b64encode(hashlib.sha256(base64.b64decode(blob)).digest()).decode().rstrip("=")
    assert remote.fingerprint_b64(blob) == expected


def test_write_pins_replaces_only_the_scanned_hosts(tmp_path: Path) -> None:
    inv = Inventory("acme", tmp_path, (Host("a", "192.0.2.1"), Host("b", "192.0.2.2", 2222)))
    inv.known_hosts.write_text("192.0.2.1 ssh-ed25519 OLD\n192.0.2.9 ssh-ed25519 OTHER\n")
    remote.write_pins(
        inv,
        [
            remote.ScannedKey("a", "192.0.2.1", "ssh-ed25519", "NEW"),
            remote.ScannedKey("b", "[192.0.2.2]:2222", "ssh-ed25519", "B"),
        ],
    )
    assert inv.known_hosts.read_text().splitlines() == [
        "192.0.2.9 ssh-ed25519 OTHER",
        "192.0.2.1 ssh-ed25519 NEW",
        "[192.0.2.2]:2222 ssh-ed25519 B",
    ]
