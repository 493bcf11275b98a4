"""The hash chain as pure functions: canonical JSON, one event's hash, and the check of a whole chain."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import pytest

from orchestrator.ledger.chain import (
    GENESIS_HASH,
    ChainRow,
    canonical_json,
    check_chain,
    event_hash,
    parse_stamp,
    utc_stamp,
)

AT = "2025-01-02T03:04:05.000006Z"


def make_chain(n: int) -> list[ChainRow]:
    rows: list[ChainRow] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        payload = {"i": seq}
        digest = event_hash(
            prev, seq=seq, at=AT, actor="ana", kind="test.event", client="acme", subject=None, payload=payload
        )
        rows.append(ChainRow(seq, AT, "ana", "test.event", "acme", None, canonical_json(payload), prev, digest))
        prev = digest
    return rows


def test_canonical_json_sorts_keys_packs_separators_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": "ü"}}) == '{"a":{"c":"ü","d":[1,2]},"b":1}'


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_event_hash_follows_the_documented_formula() -> None:
    fields = {"seq": 1, "at": AT, "actor": "ana@ops", "kind": "client.created", "client": "acme", "subject": None}
    payload = {"tier": "enterprise", "meta": {"ü": 1.5}}
    body = json.dumps({**fields, "payload": payload}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(f"{GENESIS_HASH}\n{body}".encode()).hexdigest()
    assert event_hash(GENESIS_HASH, payload=payload, **fields) == expected  # type: ignore[arg-type]


def test_event_hash_is_stable() -> None:
    # A changed value here means every existing ledger would fail verification: that is a migration, not a fix.
    digest = event_hash(
        GENESIS_HASH,
        seq=1,
        at=AT,
        actor="ana@ops",
        kind="client.created",
        client="acme",
        subject=None,
        payload={"tier": "enterprise", "meta": {"ü": 1.5}},
    )
    assert digest == "7484ab865c898f652cd93640d53158ab5082eceb552ff58dd99230cb44135eec"


def test_stamps_are_fixed_width_utc_and_round_trip() -> None:
    moment = dt.datetime(2025, 1, 2, 4, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert utc_stamp(moment) == AT
    assert parse_stamp(AT) == moment
    with pytest.raises(ValueError):
        utc_stamp(dt.datetime(2025, 1, 1))


def test_clean_chain_is_ok() -> None:
    rows = make_chain(5)
    report = check_chain(rows)
    assert report.ok
    assert report.checked == 5
    assert report.head_seq == 5
    assert report.head_hash == rows[-1].hash
    assert check_chain([]).ok


def test_edited_payload_is_named() -> None:
    rows = make_chain(20)
    rows[16] = dataclasses.replace(rows[16], payload='{"i":999}')
    report = check_chain(rows)
    assert not report.ok
    assert report.problems == ["event 17 (test.event) was altered: hash mismatch"]
    assert report.first_broken == 17


def test_deleted_row_is_named_once() -> None:
    rows = make_chain(20)
    del rows[17]
    report = check_chain(rows)
    assert report.problems == ["event 18 is missing (deleted?)"]
    assert report.first_broken == 18


def test_deleted_range_and_first_row() -> None:
    rows = make_chain(10)
    report = check_chain(rows[:3] + rows[6:])
    assert report.problems == ["events 4 to 6 are missing (deleted?)"]
    assert check_chain(rows[1:]).problems == ["event 1 is missing (deleted?)"]


def test_rewritten_row_with_a_recomputed_hash_breaks_the_next_link() -> None:
    rows = make_chain(6)
    forged = rows[2]
    payload = '{"i":"forged"}'
    digest = event_hash(
        forged.prev_hash,
        seq=3,
        at=AT,
        actor="ana",
        kind="test.event",
        client="acme",
        subject=None,
        payload=json.loads(payload),
    )
    rows[2] = dataclasses.replace(forged, payload=payload, hash=digest)
    report = check_chain(rows)
    assert report.problems == [
        "event 4 (test.event) does not follow event 3: prev_hash mismatch (inserted, re-ordered or rewritten?)"
    ]
    assert report.first_broken == 4


def test_reordered_rows_are_detected() -> None:
    rows = make_chain(8)
    rows[4], rows[5] = dataclasses.replace(rows[5], seq=5), dataclasses.replace(rows[4], seq=6)
    report = check_chain(rows)
    assert not report.ok
    assert report.first_broken == 5


def test_all_problems_are_listed_in_order() -> None:
    rows = make_chain(12)
    rows[2] = dataclasses.replace(rows[2], actor="mallory")
    del rows[7]
    rows[9] = dataclasses.replace(rows[9], payload="not json")
    report = check_chain(rows)
    assert report.problems == [
        "event 3 (test.event) was altered: hash mismatch",
        "event 8 is missing (deleted?)",
        "event 11 (test.event) was altered: payload is not valid JSON",
    ]
    assert report.first_broken == 3


def test_first_row_must_start_from_genesis() -> None:
    rows = make_chain(2)
    rows[0] = dataclasses.replace(rows[0], prev_hash="f" * 64)
    problems = check_chain(rows).problems
    assert "event 1 (test.event) does not start the chain: prev_hash is not genesis" in problems
