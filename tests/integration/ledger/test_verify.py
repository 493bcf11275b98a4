"""verify() on real databases: a clean chain passes; rows edited, deleted, inserted or re-ordered behind the
API's back are found and named, the first broken one first."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.ledger import Ledger, canonical_json, event_hash

Sql = Callable[..., list[Any]]


@pytest.fixture
def busy(ledger: Ledger) -> Ledger:
    """A ledger with 20 events of several kinds (client.created is seq 17)."""
    ledger.add_client("acme", "enterprise", {})
    ledger.sync_hosts("acme", [(f"web{i}", f"10.0.0.{i}", 22) for i in range(1, 4)])
    for i in range(12):
        ledger.append_event("note.added", "acme", None, {"i": i})
    ledger.add_client("globex", "essentials", {"note": "seq 17"})
    ledger.add_client("initech", "essentials", {})
    run = ledger.start_run("exec", "acme", {"command": "true"})
    ledger.finish_run(run.uid, "succeeded", {})
    assert len(ledger.events()) == 20
    return ledger


def test_a_clean_chain_verifies(busy: Ledger) -> None:
    report = busy.verify()
    assert report.ok, report.problems
    assert (report.checked, report.head_seq, report.first_broken) == (20, 20, None)
    assert report.head_hash == busy.events()[-1].hash


def test_an_empty_ledger_verifies(ledger: Ledger) -> None:
    assert ledger.verify().ok


def test_an_edited_payload_is_named(busy: Ledger, sql: Sql) -> None:
    sql("UPDATE events SET payload = :p WHERE seq = 17", p='{"meta":{},"tier":"enterprise"}')
    report = busy.verify()
    assert not report.ok
    assert report.problems == ["event 17 (client.created) was altered: hash mismatch"]
    assert report.first_broken == 17


def test_an_edited_actor_is_named(busy: Ledger, sql: Sql) -> None:
    sql("UPDATE events SET actor = 'someone-else' WHERE seq = 2")
    assert busy.verify().problems == ["event 2 (host.added) was altered: hash mismatch"]


def test_a_deleted_row_is_named(busy: Ledger, sql: Sql) -> None:
    sql("DELETE FROM events WHERE seq = 18")
    report = busy.verify()
    assert report.problems == ["event 18 is missing (deleted?)"]
    assert (report.first_broken, report.checked) == (18, 19)


def test_every_problem_is_listed_first_broken_first(busy: Ledger, sql: Sql) -> None:
    sql("DELETE FROM events WHERE seq = 18")
    sql("UPDATE events SET kind = 'note.removed' WHERE seq = 6")
    report = busy.verify()
    assert report.problems == [
        "event 6 (note.removed) was altered: hash mismatch",
        "event 18 is missing (deleted?)",
    ]
    assert report.first_broken == 6


def test_re_ordered_rows_are_detected(busy: Ledger, sql: Sql) -> None:
    # Swap seq 8 and 9 (through a free value: seq is unique).
    sql("UPDATE events SET seq = -8 WHERE seq = 8")
    sql("UPDATE events SET seq = 8 WHERE seq = 9")
    sql("UPDATE events SET seq = 9 WHERE seq = -8")
    report = busy.verify()
    assert not report.ok
    assert report.first_broken == 8
    assert "event 8 (note.added) was altered: hash mismatch" in report.problems


def test_an_inserted_row_is_detected_even_with_a_valid_hash(busy: Ledger, sql: Sql) -> None:
    # A forger who knows the algorithm makes room at seq 10 and inserts a row that links correctly to seq 9.
    (prev,) = sql("SELECT hash FROM events WHERE seq = 9")
    sql("UPDATE events SET seq = -seq WHERE seq >= 10")
    sql("UPDATE events SET seq = 1 - seq WHERE seq < 0")
    fields = {"seq": 10, "at": "2025-01-01T00:00:00.000000Z", "actor": "mallory", "kind": "client.created"}
    payload = {"tier": "free"}
    digest = event_hash(prev[0], client="evil", subject=None, payload=payload, **fields)  # type: ignore[arg-type]
    sql(
        "INSERT INTO events (seq, at, actor, kind, client, subject, payload, prev_hash, hash) "
        "VALUES (:seq, :at, :actor, :kind, 'evil', NULL, :payload, :prev, :hash)",
        payload=canonical_json(payload),
        prev=prev[0],
        hash=digest,
        **fields,
    )
    report = busy.verify()
    assert not report.ok
    assert report.first_broken == 11
    assert report.problems[0] == "event 11 (note.added) was altered: hash mismatch"


def test_appending_after_tampering_still_chains_from_the_head(busy: Ledger, sql: Sql) -> None:
    sql("UPDATE events SET payload = :p WHERE seq = 3", p=json.dumps({"address": "6.6.6.6", "port": 22}))
    event = busy.append_event("note.added", None, None, {})
    assert event.seq == 21
    assert busy.verify().problems == ["event 3 (host.added) was altered: hash mismatch"]
