"""The shipper's pure pieces: backoff, the records of a batch and their keys, batching, the batch's body, the
collector's acknowledgement, the cursor over acknowledged records and the quarantine of records refused too often.
No threads and no network: :mod:`.shipper` puts them to work."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .health import rfc3339

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 256 * 1024
MAX_REJECTS = 3
_BOOT_RE = re.compile(r"^[0-9a-f]{32}\Z")


class Backoff:
    """Capped exponential backoff with full jitter: the n-th delay is uniform in [0, min(cap, base * 2**n)]."""

    def __init__(self, base: float = 1.0, cap: float = 60.0, rng: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self._rng = base, cap, rng
        self.failures = 0

    def next(self) -> float:
        ceiling: float = min(self.cap, self.base * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return ceiling * self._rng()

    def reset(self) -> None:
        self.failures = 0


@dataclass(frozen=True)
class Entry:
    """One spool record on its way: where it is, its key, its raw line."""

    segment: str
    generation: int
    end: int  # byte offset just past its line, in that generation of the segment
    line: bytes  # without the newline
    boot: str | None
    seq: int | None
    last_of_closed: bool = False  # the last record of a segment that was closed when read

    @property
    def keyed(self) -> bool:
        return self.boot is not None and self.seq is not None


def key_of(record: dict[str, Any]) -> tuple[str | None, int | None]:
    boot, seq = record.get("boot"), record.get("seq")
    ok_boot = boot if isinstance(boot, str) and _BOOT_RE.match(boot) else None
    ok_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None
    return ok_boot, ok_seq


def take_batch(entries: list[Entry], max_records: int, max_bytes: int) -> list[Entry]:
    """The longest prefix within both bounds (always at least one entry, however large)."""
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        if batch and (len(batch) >= max_records or size + len(entry.line) + 1 > max_bytes):
            break
        batch.append(entry)
        size += len(entry.line) + 1
    return batch


def encode_batch(host: str, entries: list[Entry]) -> bytes:
    """The request body, gzip'ed; records go as the agent wrote them (their bytes are not re-serialised)."""
    raw = b'{"host":' + json.dumps(host).encode() + b',"records":[' + b",".join(e.line for e in entries) + b"]}"
    return gzip.compress(raw, compresslevel=6, mtime=0)


def parse_ack(body: bytes, batch_size: int) -> dict[int, str] | None:
    """Rejected indices -> reason from a 200 answer; None when the answer is not a valid acknowledgement."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("rejected", []), list):
        return None
    rejected: dict[int, str] = {}
    for item in data.get("rejected", []):
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < batch_size:
            return None
        rejected[index] = str(item.get("reason", ""))[:200]
    return rejected


@dataclass
class Cursor:
    """Everything up to here is acknowledged: segments before ``segment``, and in it the records of ``boot``
    up to ``seq``. ``offset``/``generation`` only spare re-reading (not persisted: keys decide)."""

    segment: str = ""
    boot: str | None = None
    seq: int = -1
    offset: int = 0
    generation: int = 0

    def covers(self, entry: Entry) -> bool:
        if entry.segment != self.segment:
            return entry.segment < self.segment
        if entry.keyed and entry.boot == self.boot:
            assert entry.seq is not None
            return entry.seq <= self.seq
        return entry.generation == self.generation and entry.end <= self.offset

    def advance(self, entry: Entry) -> None:
        if entry.segment != self.segment:
            self.segment, self.boot, self.seq = entry.segment, None, -1
        if entry.keyed:
            assert entry.seq is not None
            self.boot, self.seq = entry.boot, entry.seq
        self.offset, self.generation = entry.end, entry.generation

    def to_json(self) -> dict[str, Any]:
        return {"segment": self.segment, "boot": self.boot, "seq": self.seq}

    @classmethod
    def from_json(cls, data: Any) -> Cursor:
        if not isinstance(data, dict):
            return cls()
        segment, boot, seq = data.get("segment"), data.get("boot"), data.get("seq")
        if not isinstance(segment, str) or not (boot is None or isinstance(boot, str)) or not isinstance(seq, int):
            return cls()
        return cls(segment=segment, boot=boot, seq=seq)


class Quarantine:
    """``quarantine.jsonl``: records the collector would not take. Bounded: past ``max_bytes`` the oldest
    half is dropped (the count of quarantined records is kept apart and never shrinks)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes

    def add(self, entry: Entry, reason: str, when: float) -> None:
        try:
            record: Any = json.loads(entry.line)
        except ValueError:
            record = entry.line.decode("utf-8", errors="replace")
        line = json.dumps(
            {"quarantined_at": rfc3339(when), "reason": reason, "segment": entry.segment, "record": record},
            separators=(",", ":"),
        ).encode()[: self.max_bytes // 2]
        size = self.path.stat().st_size if self.path.exists() else 0
        if size + len(line) + 1 > self.max_bytes:
            kept = self.path.read_bytes()[size // 2 :]
            kept = kept[kept.find(b"\n") + 1 :]
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_bytes(kept)
            os.replace(tmp, self.path)
        with open(self.path, "ab") as fh:
            fh.write(line + b"\n")
