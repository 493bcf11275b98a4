"""The ledger's defence API on both backends: packs recorded once and never overwritten, assignments that keep the
pack before them, reverts that swap the two, tenant questions, and an event in the chain for every change."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from orchestrator.collector.schema import parse_record
from orchestrator.ledger import Ledger, LedgerError
from tests.integration.ledger.test_migration_0002 import migrate_to

SIG = b"\x01" * 64


def content(version: str) -> bytes:
    return f'{{"format":"sentry-pack/1","version":"{version}"}}'.encode()


def digest(version: str) -> str:
    return hashlib.sha256(content(version)).hexdigest()


def record(ledger: Ledger, version: str) -> None:
    ledger.record_pack(
        version, digest(version), SIG, content(version), rules_version="r1", rule_count=3, blocklist_count=2
    )


@pytest.fixture
def fleet(ledger: Ledger) -> Ledger:
    ledger.add_client("acme", "essentials", {})
    ledger.sync_hosts("acme", [("a1", "10.0.0.1", 22), ("a2", "10.0.0.2", 22)])
    ledger.add_client("globex", "enterprise", {})
    ledger.sync_hosts("globex", [("g1", "10.1.0.1", 22)])
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        record(ledger, version)
    return ledger


def kinds(ledger: Ledger) -> list[str]:
    return [e.kind for e in ledger.events() if e.kind.startswith("defence.")]


def test_a_pack_is_recorded_with_its_bytes_and_never_overwritten(ledger: Ledger) -> None:
    record(ledger, "1.0.0")
    pack = ledger.pack("1.0.0")
    assert pack is not None
    assert (pack.digest, pack.rules_version, pack.rule_count, pack.blocklist_count) == (digest("1.0.0"), "r1", 3, 2)
    assert pack.built_by == "tester@ci" and pack.built_at.tzinfo is not None
    assert ledger.pack_blob("1.0.0") == (content("1.0.0"), SIG, digest("1.0.0"))
    assert ledger.pack("9.9.9") is None and ledger.pack_blob("9.9.9") is None
    with pytest.raises(LedgerError, match="already in the ledger"):
        record(ledger, "1.0.0")
    assert [p.version for p in ledger.packs()] == ["1.0.0"]
    assert kinds(ledger) == ["defence.pack_built"]
    assert ledger.verify().ok


def test_a_pack_whose_digest_or_signature_does_not_fit_is_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="sha256"):
        ledger.record_pack(
            "1.0.0", "0" * 64, SIG, content("1.0.0"), rules_version=None, rule_count=0, blocklist_count=1
        )
    with pytest.raises(LedgerError, match="64 bytes"):
        ledger.record_pack(
            "1.0.0", digest("1.0.0"), b"x", content("1.0.0"), rules_version=None, rule_count=0, blocklist_count=1
        )
    assert ledger.packs() == []


def test_assignment_keeps_the_previous_pack_and_a_revert_swaps_them(fleet: Ledger) -> None:
    fleet.assign_pack("acme", ["a1", "a2"], "1.0.0", digest("1.0.0"), push_uid="p1")
    first = fleet.assignment("acme", "a1")
    assert first is not None
    assert (first.version, first.previous_version, first.push_uid) == ("1.0.0", None, "p1")
    fleet.assign_pack("acme", ["a1"], "1.1.0", digest("1.1.0"), push_uid="p2")
    moved = fleet.assignment("acme", "a1")
    assert moved is not None
    assert (moved.version, moved.digest, moved.previous_version, moved.previous_digest) == (
        "1.1.0",
        digest("1.1.0"),
        "1.0.0",
        digest("1.0.0"),
    )
    # The same pack again changes nothing: the previous one is not lost to a repeated push.
    fleet.assign_pack("acme", ["a1"], "1.1.0", digest("1.1.0"))
    again = fleet.assignment("acme", "a1")
    assert again is not None and (again.previous_version, again.push_uid) == ("1.0.0", "p2")

    reverted = fleet.revert_packs("acme", ["a1"], reason="gate failed")
    assert [(r.host, r.version, r.previous_version, r.push_uid) for r in reverted] == [("a1", "1.0.0", "1.1.0", None)]
    # A second revert undoes the first.
    fleet.revert_packs("acme", ["a1"], reason="after all")
    back = fleet.assignment("acme", "a1")
    assert back is not None and (back.version, back.previous_version) == ("1.1.0", "1.0.0")
    assert kinds(fleet) == ["defence.pack_built"] * 3 + ["defence.assigned"] * 3 + ["defence.reverted"] * 2
    assert fleet.verify().ok


def test_revert_of_the_whole_client_goes_back_to_release_rules_where_nothing_came_before(fleet: Ledger) -> None:
    fleet.assign_pack("acme", ["a1", "a2"], "1.0.0", digest("1.0.0"))
    fleet.assign_pack("acme", ["a2"], "1.2.0", digest("1.2.0"))
    reverted = fleet.revert_packs("acme", reason="operator")
    assert [(r.host, r.version, r.digest) for r in reverted] == [("a1", None, None), ("a2", "1.0.0", digest("1.0.0"))]
    # Another client's assignments are untouched; a client with none reverts nothing.
    assert fleet.revert_packs("globex", reason="operator") == []


def test_unassigning_and_what_a_client_may_fetch(fleet: Ledger) -> None:
    assert not fleet.pack_offered_to("acme", "1.0.0")
    fleet.assign_pack("acme", ["a1"], "1.0.0", digest("1.0.0"))
    fleet.assign_pack("acme", ["a1"], "1.1.0", digest("1.1.0"))
    assert fleet.pack_offered_to("acme", "1.0.0") and fleet.pack_offered_to("acme", "1.1.0")
    assert not fleet.pack_offered_to("acme", "1.2.0")
    assert not fleet.pack_offered_to("globex", "1.1.0")
    fleet.assign_pack("acme", ["a1"], None, None)
    none = fleet.assignment("acme", "a1")
    assert none is not None and (none.version, none.previous_version) == (None, "1.1.0")
    # Unassigning a host that never had a pack records nothing.
    fleet.assign_pack("acme", ["a2"], None, None)
    assert fleet.assignment("acme", "a2") is None
    assert [a.host for a in fleet.assignments("acme")] == ["a1"]
    assert [a.client for a in fleet.assignments()] == ["acme"]


def test_assignments_are_checked(fleet: Ledger) -> None:
    with pytest.raises(LedgerError, match="not in the ledger"):
        fleet.assign_pack("acme", ["a1"], "7.0.0", "0" * 64)
    with pytest.raises(LedgerError, match="digest"):
        fleet.assign_pack("acme", ["a1"], "1.0.0", digest("1.1.0"))
    with pytest.raises(LedgerError, match="both"):
        fleet.assign_pack("acme", ["a1"], "1.0.0", None)
    with pytest.raises(LedgerError, match="not a live host"):
        fleet.assign_pack("acme", ["a1", "g1"], "1.0.0", digest("1.0.0"))
    with pytest.raises(LedgerError, match="client 'nobody'"):
        fleet.assign_pack("nobody", ["a1"], "1.0.0", digest("1.0.0"))
    with pytest.raises(LedgerError, match="twice"):
        fleet.assign_pack("acme", ["a1", "a1"], "1.0.0", digest("1.0.0"))
    with pytest.raises(LedgerError, match="reason"):
        fleet.revert_packs("acme", reason=" ")
    # A refused assignment is all or nothing.
    assert fleet.assignments() == []


def test_live_hosts(fleet: Ledger) -> None:
    assert fleet.host_is_live("acme", "a1")
    assert not fleet.host_is_live("acme", "g1")
    fleet.sync_hosts("acme", [("a2", "10.0.0.2", 22)])
    assert not fleet.host_is_live("acme", "a1")


def test_heartbeats_keep_the_active_pack(fleet: Ledger) -> None:
    beat = {
        "type": "heartbeat",
        "boot": "a" * 32,
        "seq": 1,
        "time": "2026-12-07T19:00:00Z",
        "host": "a1",
        "event": "pack",
        "pack_version": "1.0.0",
        "pack_digest": digest("1.0.0"),
        "pack_status": "active",
        "detect_us_per_line": 2.25,
    }
    parsed = parse_record(beat, "a1")
    assert not isinstance(parsed, str)
    fleet.store_batch("acme", "a1", [parsed], dt.datetime.now(dt.UTC))
    (latest,) = fleet.latest_heartbeats("acme")
    assert (latest.event, latest.pack_version, latest.pack_digest, latest.pack_status, latest.detect_us_per_line) == (
        "pack",
        "1.0.0",
        digest("1.0.0"),
        "active",
        2.25,
    )


def test_migration_0007_goes_down_and_up(ledger_url: str, home: Path) -> None:
    with Ledger.open(ledger_url, home) as opened:
        opened.add_client("acme", "essentials", {})
    migrate_to(ledger_url, home, "0006", down=True)
    engine = sa.create_engine(ledger_url, poolclass=NullPool)
    try:
        assert not sa.inspect(engine).has_table("defence_packs")
        assert "pack_status" not in {c["name"] for c in sa.inspect(engine).get_columns("telemetry_heartbeats")}
    finally:
        engine.dispose()
    with Ledger.open(ledger_url, home) as reopened:
        record(reopened, "1.0.0")
        assert [c.name for c in reopened.clients()] == ["acme"] and reopened.verify().ok
