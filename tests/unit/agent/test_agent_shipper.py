"""The shipper's logic against a real spool on disk and a fake collector (pure logic: no network here;
the TLS pin is tested against a real TLS server in test_agent_shipper_tls.py)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sentry_agent.config import AgentConfig, parse_config
from sentry_agent.shipper import (
    MAX_REJECTS,
    Backoff,
    Entry,
    Quarantine,
    Shipper,
    TransportError,
    parse_ack,
    take_batch,
)
from sentry_agent.spool import Spool, segment_paths

from .agent_helpers import FakeClock

BOOT = "ab" * 16


def rec(seq: int, kind: str = "alert", boot: str = BOOT, pad: int = 40) -> dict[str, Any]:
    return {"type": kind, "boot": boot, "seq": seq, "time": "2026-12-06T00:00:00.000Z", "host": "game-01",
            "pad": "x" * pad}  # fmt: skip


class FakeCollector:
    """Stores by idempotency key like the real one; can fail, reject, or take a batch and lose the answer."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, int], dict[str, Any]] = {}
        self.posts: list[list[dict[str, Any]]] = []
        self.fail: int = 0  # next N posts raise TransportError
        self.status: int = 200
        self.reject: Callable[[dict[str, Any]], str | None] = lambda r: None
        self.lose_answer: int = 0  # next N posts are stored but the answer never arrives
        self.max_records: int | None = None  # more in one batch: 413
        self.closed = 0

    def post(self, body: bytes) -> tuple[int, bytes]:
        if self.fail:
            self.fail -= 1
            raise TransportError("connection refused")
        data = json.loads(gzip.decompress(body))
        records = data["records"]
        self.posts.append(records)
        if self.status != 200:
            return self.status, b'{"error": "go away"}'
        if self.max_records is not None and len(records) > self.max_records:
            return 413, b'{"error": "too many records"}'
        rejected, stored, duplicates = [], 0, 0
        for i, r in enumerate(records):
            reason = self.reject(r)
            if reason:
                rejected.append({"index": i, "reason": reason})
                continue
            key = (r["boot"], r["seq"])
            if key in self.stored:
                duplicates += 1
            else:
                self.stored[key] = r
                stored += 1
        if self.lose_answer:
            self.lose_answer -= 1
            raise TransportError("timed out")
        return 200, json.dumps({"stored": stored, "duplicates": duplicates, "rejected": rejected}).encode()

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    return parse_config(
        {
            "client": "acme",
            "tier": "professional",
            "host": "game-01",
            "sources": [{"name": "game", "path": str(tmp_path / "login.log")}],
            "spool_dir": str(tmp_path / "spool"),
            "state_dir": str(tmp_path / "state"),
            "collector_url": "https://10.0.0.1:8443",
            "collector_cert_sha256": "0" * 64,
            "collector_token": "TOKEN-0123456789",
            "ship_interval_seconds": 2,
        }
    )


def open_spool(config: AgentConfig, segment_bytes: int | None = None) -> Spool:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    spool = Spool(config.spool_dir, config.spool_max_bytes, segment_bytes=segment_bytes)
    spool.open()
    return spool


def shipper_for(config: AgentConfig, spool: Spool, collector: FakeCollector, clock: FakeClock, **kw: Any) -> Shipper:
    shipper = Shipper(config, spool, transport=collector, clock=clock, rng=lambda: 1.0, **kw)
    shipper.load_state()
    return shipper


def drain(shipper: Shipper, clock: FakeClock, steps: int = 200) -> None:
    """Run shipping steps, moving the clock by each step's delay, until nothing is left to send."""
    for _ in range(steps):
        attempt = shipper.ship_once()
        if attempt.sent == 0 and attempt.error is None and not shipper.pending(1):
            return
        clock.advance(max(attempt.delay, 0.001))
    raise AssertionError("shipper did not drain")


# -- pure pieces -----------------------------------------------------------------------------------------


def entry(i: int, size: int = 10) -> Entry:
    return Entry("spool-000000000001.jsonl", 0, (i + 1) * (size + 1), b"x" * size, BOOT, i)


def test_take_batch_is_bounded_by_records_and_bytes_but_never_empty() -> None:
    entries = [entry(i) for i in range(10)]
    assert len(take_batch(entries, 4, 10_000)) == 4
    assert len(take_batch(entries, 100, 3 * 11)) == 3  # each line counts its newline
    assert len(take_batch([entry(0, size=5000)], 100, 100)) == 1  # one oversized record still goes (413 decides)
    assert take_batch([], 10, 10) == []


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    top = Backoff(base=1.0, cap=60.0, rng=lambda: 1.0)
    assert [top.next() for _ in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    top.reset()
    assert top.next() == 1.0
    bottom = Backoff(rng=lambda: 0.0)
    assert bottom.next() == 0.0  # full jitter: anywhere from zero up to the ceiling
    half = Backoff(rng=lambda: 0.5)
    assert [half.next() for _ in range(3)] == [0.5, 1.0, 2.0]


def test_parse_ack_refuses_answers_that_do_not_acknowledge() -> None:
    assert parse_ack(b'{"stored": 2, "duplicates": 0, "rejected": []}', 2) == {}
    assert parse_ack(b'{"rejected": [{"index": 1, "reason": "bad seq"}]}', 2) == {1: "bad seq"}
    assert parse_ack(b"not json", 2) is None
    assert parse_ack(b'{"rejected": [{"index": 5}]}', 2) is None  # out of range
    assert parse_ack(b'{"rejected": [{"index": true}]}', 2) is None
    assert parse_ack(b"[]", 2) is None


def test_quarantine_file_stays_bounded(tmp_path: Path) -> None:
    q = Quarantine(tmp_path / "quarantine.jsonl", max_bytes=4096)
    for i in range(200):
        q.add(Entry("s", 0, 0, json.dumps(rec(i)).encode(), BOOT, i), "bad", 0.0)
    lines = (tmp_path / "quarantine.jsonl").read_bytes().splitlines()
    assert (tmp_path / "quarantine.jsonl").stat().st_size <= 4096
    assert json.loads(lines[-1])["record"]["seq"] == 199  # the newest are kept
    assert all(json.loads(line)["reason"] == "bad" for line in lines)


# -- shipping ------------------------------------------------------------------------------------------


def test_everything_arrives_once_in_order_and_shipped_segments_are_deleted(
    config: AgentConfig, clock: FakeClock
) -> None:
    spool = open_spool(config, segment_bytes=1000)
    written = [rec(i) for i in range(40)]
    for r in written:
        spool.append([r])
    assert len(segment_paths(config.spool_dir)) > 3
    collector = FakeCollector()
    shipper = shipper_for(config, spool, collector, clock, max_records=7)
    drain(shipper, clock)
    assert [collector.stored[(BOOT, i)]["seq"] for i in range(40)] == list(range(40))
    sent = [r["seq"] for batch in collector.posts for r in batch]
    assert sent == list(range(40))  # in order, nothing twice
    assert all(len(batch) <= 7 for batch in collector.posts)
    # Only the active segment is left; it is never deleted while the agent may write to it.
    assert [p.name for p in segment_paths(config.spool_dir)] == [spool.segments()[-1].name]
    assert spool.segments()[-1].active
    state = json.loads((config.state_dir / "shipper.json").read_text())
    assert state["cursor"] == {"segment": spool.segments()[-1].name, "boot": BOOT, "seq": 39}


def test_what_a_previous_run_left_goes_at_once(config: AgentConfig, clock: FakeClock) -> None:
    spool = open_spool(config)
    spool.append([rec(0)])
    collector = FakeCollector()
    assert shipper_for(config, spool, collector, clock).ship_once().acked == 1


def test_a_partial_batch_waits_for_the_ship_interval_a_full_one_does_not(config: AgentConfig, clock: FakeClock) -> None:
    spool = open_spool(config)
    collector = FakeCollector()
    shipper = shipper_for(config, spool, collector, clock, max_records=3)
    assert shipper.ship_once().sent == 0
    spool.append([rec(0)])
    first = shipper.ship_once()
    assert first.sent == 0 and 0 < first.delay <= config.ship_interval_seconds
    clock.advance(config.ship_interval_seconds)
    assert shipper.ship_once().acked == 1
    spool.append([rec(1), rec(2), rec(3)])
    assert shipper.ship_once().acked == 3  # full batch: at once


def test_nothing_is_deleted_while_the_collector_is_down_then_everything_arrives(
    config: AgentConfig, clock: FakeClock
) -> None:
    spool = open_spool(config, segment_bytes=500)
    for i in range(20):
        spool.append([rec(i)])
    before = [p.name for p in segment_paths(config.spool_dir)]
    collector = FakeCollector()
    collector.fail = 5
    shipper = shipper_for(config, spool, collector, clock)
    delays = []
    for _ in range(5):
        clock.advance(10)
        attempt = shipper.ship_once()
        assert attempt.error is not None and attempt.acked == 0
        delays.append(attempt.delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]  # rng pinned to the ceiling
    assert [p.name for p in segment_paths(config.spool_dir)] == before
    drain(shipper, clock)
    assert sorted(collector.stored) == [(BOOT, i) for i in range(20)]
    assert shipper.backoff.failures == 0


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
def test_refusals_and_overload_keep_the_spool_and_back_off(config: AgentConfig, clock: FakeClock, status: int) -> None:
    spool = open_spool(config)
    spool.append([rec(0), rec(1)])
    collector = FakeCollector()
    collector.status = status
    shipper = shipper_for(config, spool, collector, clock)
    clock.advance(5)
    first, second = shipper.ship_once(), shipper.ship_once()
    assert first.status == status and first.error and str(status) in first.error
    assert second.delay > first.delay
    assert len(shipper.pending(10)) == 2
    collector.status = 200
    drain(shipper, clock)
    assert len(collector.stored) == 2


def test_lost_answer_means_resend_and_the_key_makes_it_once(config: AgentConfig, clock: FakeClock) -> None:
    spool = open_spool(config)
    spool.append([rec(i) for i in range(5)])
    collector = FakeCollector()
    collector.lose_answer = 1  # stored, but the agent never hears it (collector killed mid-answer)
    shipper = shipper_for(config, spool, collector, clock)
    drain(shipper, clock)
    assert len(collector.posts) == 2 and collector.posts[0] == collector.posts[1]
    assert sorted(collector.stored) == [(BOOT, i) for i in range(5)]


def test_restart_resumes_after_the_acknowledged_position(config: AgentConfig, clock: FakeClock) -> None:
    spool = open_spool(config)
    spool.append([rec(i) for i in range(5)])
    collector = FakeCollector()
    drain(shipper_for(config, spool, collector, clock), clock)
    spool.append([rec(i) for i in range(5, 8)])
    spool.close()
    # A new agent process: same spool directory, same state_dir, its own boot.
    spool2 = open_spool(config)
    new_boot = "cd" * 16
    spool2.append([rec(0, boot=new_boot)])
    again = FakeCollector()
    drain(shipper_for(config, spool2, again, clock), clock)
    sent = [(r["boot"], r["seq"]) for batch in again.posts for r in batch]
    assert sent == [(BOOT, 5), (BOOT, 6), (BOOT, 7), (new_boot, 0)]
    assert len(segment_paths(config.spool_dir)) == 1  # the old run's segment went once fully acknowledged


def test_crash_before_the_state_was_saved_resends_and_nothing_is_lost(config: AgentConfig, clock: FakeClock) -> None:
    spool = open_spool(config)
    spool.append([rec(i) for i in range(6)])
    collector = FakeCollector()
    shipper = shipper_for(config, spool, collector, clock)
    drain(shipper, clock)
    (config.state_dir / "shipper.json").unlink()  # as if the agent died right after the answer
    drain(shipper_for(config, spool, collector, clock), clock)
    assert len(collector.posts) == 2
    assert sorted(collector.stored) == [(BOOT, i) for i in range(6)]


def test_a_record_rejected_three_times_is_quarantined_and_the_rest_flows(config: AgentConfig, clock: FakeClock) -> None:
    spool = open_spool(config)
    spool.append([rec(i) for i in range(5)])
    collector = FakeCollector()
    collector.reject = lambda r: "host mismatch" if r["seq"] == 2 else None
    shipper = shipper_for(config, spool, collector, clock)
    drain(shipper, clock)
    assert sorted(collector.stored) == [(BOOT, i) for i in (0, 1, 3, 4)]
    tries = sum(1 for batch in collector.posts for r in batch if r["seq"] == 2)
    assert tries == MAX_REJECTS
    assert shipper.quarantined == 1
    lines = (config.state_dir / "quarantine.jsonl").read_text().splitlines()
    assert len(lines) == 1
    q = json.loads(lines[0])
    assert q["record"]["seq"] == 2 and "host mismatch" in q["reason"]
    # The count survives a restart (heartbeats report it).
    assert shipper_for(config, spool, FakeCollector(), clock).quarantined == 1


def test_records_without_a_key_are_quarantined_without_being_sent(config: AgentConfig, clock: FakeClock) -> None:
    spool = open_spool(config)
    spool.append([{"type": "alert", "legacy": True}, rec(0)])
    collector = FakeCollector()
    shipper = shipper_for(config, spool, collector, clock)
    drain(shipper, clock)
    assert [r["seq"] for batch in collector.posts for r in batch] == [0]
    assert shipper.quarantined == 1


def test_413_halves_the_batch_and_a_single_oversized_record_is_quarantined(
    config: AgentConfig, clock: FakeClock
) -> None:
    spool = open_spool(config)
    spool.append([rec(i) for i in range(8)])
    collector = FakeCollector()
    collector.max_records = 2
    shipper = shipper_for(config, spool, collector, clock)
    drain(shipper, clock)
    assert sorted(collector.stored) == [(BOOT, i) for i in range(8)]
    assert [len(b) for b in collector.posts][:3] == [8, 4, 2]
    collector.max_records = 0
    spool.append([rec(8)])
    drain(shipper, clock)
    assert shipper.quarantined == 1 and (BOOT, 8) not in collector.stored


def test_compaction_of_a_segment_mid_shipment_skips_by_key_not_offset(config: AgentConfig, clock: FakeClock) -> None:
    # A small spool: heartbeats get stripped from closed segments (rewritten, offsets move) while the
    # collector is down; alerts are small enough never to be dropped.
    spool = Spool(config.spool_dir, max_bytes=64 * 1024, segment_bytes=8 * 1024)
    config.state_dir.mkdir(parents=True)
    spool.open()
    collector = FakeCollector()
    shipper = shipper_for(config, spool, collector, clock, max_records=5)
    kinds: dict[int, str] = {}
    for seq in range(120):
        kinds[seq] = "heartbeat" if seq % 2 else "alert"
        spool.append([rec(seq, kind=kinds[seq], pad=1000 if seq % 2 else 20)])
        if seq == 9:
            clock.advance(5)
            assert shipper.ship_once().acked == 5  # 0..4, inside the first segment
            collector.fail = 10_000
    assert spool.dropped["heartbeat"] > 0 and spool.dropped["alert"] == 0
    assert spool.segments()[0].generation > 0  # the first segment was rewritten under the shipper's cursor
    collector.fail = 0
    drain(shipper, clock)
    alerts = [seq for seq, kind in kinds.items() if kind == "alert"]
    stored_alerts = sorted(k[1] for k, r in collector.stored.items() if r["type"] == "alert")
    assert stored_alerts == alerts  # every alert once
    sent = [r["seq"] for batch in collector.posts for r in batch]
    assert len(sent) == len(set(sent))  # no record sent twice, though offsets moved


def test_stop_sends_what_is_due_then_the_thread_ends(config: AgentConfig) -> None:
    spool = open_spool(config)
    collector = FakeCollector()
    shipper = Shipper(config, spool, transport=collector)
    shipper.start()
    spool.append([rec(0, kind="heartbeat")])  # the stop heartbeat, written just before stop()
    shipper.stop(flush_seconds=2.0)
    assert (BOOT, 0) in collector.stored
    assert collector.closed >= 1
