from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sentry_agent.spool import Spool, SpoolError, iter_records, segment_paths


def rec(kind: str, i: int) -> dict[str, Any]:
    # Fixed-width fields make every line the same length, so sizes below are exact.
    return {"type": kind, "i": f"{i:04d}", "pad": "x" * 40}


def line_len(kind: str) -> int:
    return len(json.dumps(rec(kind, 0), separators=(",", ":"))) + 1


def on_disk(directory: Path) -> int:
    return sum(p.stat().st_size for p in segment_paths(directory))


def test_records_come_back_in_write_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=3 * line_len("alert"))
    spool.open()
    written = [rec("alert" if i % 3 == 0 else "heartbeat", i) for i in range(10)]
    for r in written:
        spool.append([r])
    spool.close()
    assert list(iter_records(tmp_path)) == written
    names = [p.name for p in segment_paths(tmp_path)]
    assert len(names) > 2
    assert names[0] == "spool-000000000001.jsonl"
    assert spool.size_bytes == on_disk(tmp_path)


def test_each_batch_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    spool.append([rec("alert", 1), rec("alert", 2)])
    after_first = len(synced)
    spool.append([rec("alert", 3)])
    assert after_first >= 1 and len(synced) == after_first + 1


def test_bound_drops_oldest_heartbeats_first(tmp_path: Path) -> None:
    a, h = line_len("alert"), line_len("heartbeat")
    written = [
        rec("alert", 0),
        rec("heartbeat", 1),
        rec("heartbeat", 2),
        rec("heartbeat", 3),
        rec("alert", 4),
    ]
    spool = Spool(tmp_path, max_bytes=2 * a + 3 * h, segment_bytes=2 * max(a, h))
    spool.open()
    for r in written:
        spool.append([r])
    assert spool.dropped_counts() == {}
    spool.append([rec("alert", 5)])  # over the bound by one record
    remaining = list(iter_records(tmp_path))
    assert [r["i"] for r in remaining] == ["0000", "0002", "0003", "0004", "0005"]  # heartbeat 1 went first
    assert spool.dropped_counts() == {"heartbeat": 1}
    assert spool.size_bytes <= spool.max_bytes
    assert spool.size_bytes == on_disk(tmp_path)


def test_heartbeats_in_the_open_segment_go_before_older_alerts(tmp_path: Path) -> None:
    a, h = line_len("alert"), line_len("heartbeat")
    spool = Spool(tmp_path, max_bytes=3 * a + h, segment_bytes=3 * a)
    spool.open()
    for r in [rec("alert", 0), rec("alert", 1), rec("alert", 2), rec("heartbeat", 3)]:
        spool.append([r])  # closed segment: three alerts; open segment: one heartbeat
    spool.append([rec("alert", 4)])
    assert [r["i"] for r in iter_records(tmp_path)] == ["0000", "0001", "0002", "0004"]
    assert spool.dropped_counts() == {"heartbeat": 1}


def test_alerts_are_dropped_only_when_no_older_heartbeat_is_left(tmp_path: Path) -> None:
    seg = 3 * line_len("heartbeat")
    spool = Spool(tmp_path, max_bytes=12 * line_len("alert"), segment_bytes=seg)
    spool.open()
    written: dict[str, list[str]] = {"alert": [], "heartbeat": []}
    for i in range(200):
        kind = "heartbeat" if i % 4 == 0 else "alert"
        spool.append([rec(kind, i)])
        written[kind].append(f"{i:04d}")

        remaining = list(iter_records(tmp_path))
        kept = {k: [r["i"] for r in remaining if r["type"] == k] for k in written}
        dropped = spool.dropped_counts()
        assert spool.size_bytes <= spool.max_bytes
        assert spool.size_bytes == on_disk(tmp_path)
        for k, ids in written.items():
            # What is kept is always the newest of each type, and every loss is counted.
            assert kept[k] == ids[len(ids) - len(kept[k]) :]
            assert len(kept[k]) + dropped.get(k, 0) == len(ids)
        if dropped.get("alert"):
            # Heartbeats may only survive in the segment still being written.
            assert len(kept["heartbeat"]) * line_len("heartbeat") <= seg
    assert spool.dropped_counts()["alert"] > 0
    assert spool.dropped_counts()["heartbeat"] > 0


def test_restart_continues_sequence_and_cuts_a_torn_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    spool.append([rec("alert", 1)])
    spool.close()
    (last,) = segment_paths(tmp_path)
    with open(last, "ab") as fh:
        fh.write(b'{"type":"alert","i":"00')  # a crash in the middle of a write
    assert [r["i"] for r in iter_records(tmp_path)] == ["0001"]  # readers skip it even before repair

    again = Spool(tmp_path, max_bytes=1 << 20)
    again.open()
    assert last.read_bytes().endswith(b"\n")
    again.append([rec("alert", 2)])
    again.close()
    paths = segment_paths(tmp_path)
    assert [p.name for p in paths] == ["spool-000000000001.jsonl", "spool-000000000002.jsonl"]
    assert [r["i"] for r in iter_records(tmp_path)] == ["0001", "0002"]


def test_reopening_with_a_smaller_bound_enforces_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2 * line_len("heartbeat"))
    spool.open()
    for i in range(10):
        spool.append([rec("heartbeat", i)])
    spool.close()
    small = Spool(tmp_path, max_bytes=4 * line_len("heartbeat"), segment_bytes=2 * line_len("heartbeat"))
    small.open()
    assert [r["i"] for r in iter_records(tmp_path)] == ["0006", "0007", "0008", "0009"]
    assert small.dropped_counts() == {"heartbeat": 6}


def test_oversized_record_is_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)
    spool.open()
    spool.append([{"type": "alert", "blob": "x" * 600}, rec("alert", 1)])
    assert [r.get("i") for r in iter_records(tmp_path)] == ["0001"]
    assert spool.dropped_counts() == {"alert": 1}


def test_write_failure_leaves_no_torn_line_and_counts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    spool.append([rec("alert", 1)])

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(SpoolError, match="No space left on device"):
        spool.append([rec("alert", 2), rec("heartbeat", 3)])
    monkeypatch.undo()
    assert spool.dropped_counts() == {"alert": 1, "heartbeat": 1}
    spool.append([rec("alert", 4)])
    assert [r["i"] for r in iter_records(tmp_path)] == ["0001", "0004"]
    assert spool.size_bytes == on_disk(tmp_path)


def test_iter_records_skips_garbage_lines(tmp_path: Path) -> None:
    content = b'{"type":"alert","n":1}\nnot json\n[1]\n{"type":"x"}\n'
    (tmp_path / "spool-000000000001.jsonl").write_bytes(content)
    (tmp_path / "unrelated.txt").write_text("{}\n", encoding="utf-8")
    assert list(iter_records(tmp_path)) == [{"type": "alert", "n": 1}, {"type": "x"}]
