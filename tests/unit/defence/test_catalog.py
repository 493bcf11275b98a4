"""Building packs into the catalog and the ledger, reading them back, and verify catching every tampering; and the
networks Sentry needs, read from every client's inventory and the collector's configuration."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import paths
from orchestrator.collector import config as collector_config
from orchestrator.defence import (
    DefenceError,
    DefenceInputError,
    build_pack,
    get_pack,
    latest_pack,
    list_packs,
    packs_dir,
    verify_pack,
)
from orchestrator.defence.pack import FORMAT, canonical_bytes
from orchestrator.ledger import Ledger
from orchestrator.releases import signing
from orchestrator.settings import Settings


def write_inventory(inventories: Path, client: str, mgmt: list[str]) -> None:
    d = inventories / client
    (d / "group_vars").mkdir(parents=True)
    (d / "hosts.yml").write_text("all:\n  hosts:\n    h1: {ansible_host: 10.9.0.1}\n")
    (d / "client.yml").write_text(f"client: {client}\ntier: professional\n")
    (d / "group_vars" / "all.yml").write_text("sentry_mgmt_networks:\n" + "".join(f"  - {n}\n" for n in mgmt))


@pytest.fixture
def settings(home: Path, tmp_path: Path, ledger_url: str) -> Settings:
    found = Settings(home=home, inventories=tmp_path / "inventories", db_url=ledger_url)
    signing.keygen(home)
    write_inventory(found.inventories, "acme", ["192.0.2.0/28"])
    write_inventory(found.inventories, "globex", ["2001:db8:aa::/48"])
    collector_config.init(found, listen="198.18.0.5:8443", url=None, sans=())
    return found


def rules() -> dict[str, Any]:
    return dict(json.loads((paths.project_root() / "agent" / "rules" / "rules.json").read_text()))


BLOCK = [{"net": "203.0.113.0/24", "expires": "7d", "comment": "botnet X"}]


def test_a_pack_is_built_signed_catalogued_and_recorded(settings: Settings, ledger: Ledger) -> None:
    built = build_pack(settings, ledger, version="2026.12.7", rules=rules(), blocklist=BLOCK)
    assert (built.version, built.rules_version, built.rule_count, built.blocklist_count) == (
        "2026.12.7",
        "2026.12.1",
        2,
        1,
    )
    assert built.signed_by == signing.public_fingerprint(settings.home)
    folder = packs_dir(settings.home) / "2026.12.7"
    data = (folder / "pack.json").read_bytes()
    obj = json.loads(data)
    assert data == canonical_bytes(obj) and hashlib.sha256(data).hexdigest() == built.digest
    assert sorted(obj) == ["blocklist", "created_at", "format", "rules", "version"] and obj["format"] == FORMAT
    assert obj["rules"] == rules() and obj["blocklist"][0]["net"] == "203.0.113.0/24"
    assert obj["created_at"].endswith("Z") and obj["blocklist"][0]["expires_at"].endswith("Z")
    signing.verify(data, (folder / "pack.json.sig").read_bytes(), signing.public_key_path(settings.home))
    assert ledger.pack_blob("2026.12.7") == (data, (folder / "pack.json.sig").read_bytes(), built.digest)
    assert verify_pack(settings, ledger, "2026.12.7") == built
    assert get_pack(settings, ledger, "2026.12.7") == built
    assert [e.kind for e in ledger.events()][-1] == "defence.pack_built"

    # A version is never built twice, whatever it would hold.
    with pytest.raises(DefenceInputError, match="already exists"):
        build_pack(settings, ledger, version="2026.12.7", rules=None, blocklist=BLOCK)
    blocklist_only = build_pack(settings, ledger, version="2026.12.10", rules=None, blocklist=BLOCK)
    assert (blocklist_only.rules, blocklist_only.rule_count) == (None, 0)
    assert [p.version for p in list_packs(settings, ledger)] == ["2026.12.7", "2026.12.10"]
    latest = latest_pack(settings, ledger)
    assert latest is not None and latest.version == "2026.12.10"


@pytest.mark.parametrize(
    ("net", "what"),
    [
        ("192.0.2.0/24", "a management network of acme"),
        ("2001:db8::/32", "a management network of globex"),
        ("198.18.0.0/24", "the collector's address"),
    ],
)
def test_an_entry_covering_what_sentry_needs_is_refused(
    settings: Settings, ledger: Ledger, net: str, what: str
) -> None:
    with pytest.raises(DefenceInputError, match=f"covers {what}"):
        build_pack(settings, ledger, version="1.0.0", rules=None, blocklist=[{"net": net, "expires": "1d"}])
    assert not (packs_dir(settings.home) / "1.0.0").exists() and ledger.packs() == []


def test_nothing_is_built_without_content_a_key_or_a_good_version(settings: Settings, ledger: Ledger) -> None:
    with pytest.raises(DefenceInputError, match="needs rules, a blocklist"):
        build_pack(settings, ledger, version="1.0.0", rules=None, blocklist=[])
    with pytest.raises(DefenceInputError, match="invalid pack version"):
        build_pack(settings, ledger, version="1.0", rules=None, blocklist=BLOCK)
    signing.private_key_path(settings.home).unlink()
    with pytest.raises(signing.SigningKeyError):
        build_pack(settings, ledger, version="1.0.0", rules=None, blocklist=BLOCK)
    assert ledger.packs() == []


def tamper_catalog(settings: Settings) -> None:
    path = packs_dir(settings.home) / "1.0.0" / "pack.json"
    path.write_bytes(path.read_bytes().replace(b"203.0.113.0/24", b"203.0.113.0/25"))


def tamper_signature(settings: Settings) -> None:
    path = packs_dir(settings.home) / "1.0.0" / "pack.json.sig"
    path.write_bytes(bytes(64))


def replace_key(settings: Settings) -> None:
    signing.keygen(settings.home, force=True)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (tamper_catalog, "the catalog's pack.json differs from the ledger's copy"),
        (tamper_signature, "the catalog's pack.json.sig differs"),
        (replace_key, "signature: signature does not match"),
    ],
)
def test_verify_names_what_differs(settings: Settings, ledger: Ledger, tamper: Any, message: str) -> None:
    build_pack(settings, ledger, version="1.0.0", rules=None, blocklist=BLOCK)
    tamper(settings)
    with pytest.raises(DefenceError, match=message):
        verify_pack(settings, ledger, "1.0.0")


def test_verify_catches_the_ledgers_copy_altered(settings: Settings, ledger: Ledger, sql: Any) -> None:
    build_pack(settings, ledger, version="1.0.0", rules=None, blocklist=BLOCK)
    content, _, _ = ledger.pack_blob("1.0.0") or (b"", b"", "")
    sql("UPDATE defence_packs SET content = :c", c=content.replace(b"botnet X", b"botnet Y"))
    with pytest.raises(DefenceError, match=r"differs from the ledger's copy.*digest.*signature"):
        verify_pack(settings, ledger, "1.0.0")
    with pytest.raises(DefenceError, match=r"no defence pack 9\.9\.9"):
        verify_pack(settings, ledger, "9.9.9")
