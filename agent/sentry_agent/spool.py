"""Durable, bounded on-disk spool of alerts and heartbeats, waiting to be shipped to Sentry's collector.

On-disk format (the contract for a future shipper):

- The spool directory holds segment files ``spool-<seq>.jsonl`` where ``<seq>`` is a 12-digit zero-padded
  decimal that only grows (across restarts too). Reading segments in ascending ``<seq>`` and each segment top
  to bottom yields records in the order they were written.
- Each line is one UTF-8 JSON object terminated by ``\\n``, with at least ``"type"``: ``"alert"`` or
  ``"heartbeat"``. Readers must ignore a final line without ``\\n`` (a write in progress) and skip lines that
  do not parse. :func:`iter_records` does both.
- Only the highest-numbered segment is appended to; when it passes the segment size a new one is started, and
  each agent start begins a new segment (so one segment holds the records of one agent run only). A segment
  that is not the active one never grows again. The shipper reads segments through :meth:`Spool.read_segment`
  and deletes one it shipped completely with :meth:`Spool.delete_shipped`, both under the spool's lock, so a
  compaction never runs halfway through either; the active segment is never deleted.
- Every :meth:`Spool.append` batch is written, flushed and fsync'ed before it returns, and new segment files
  are made durable with an fsync of the directory, so an acknowledged record survives a crash.

Bound: when the segments together exceed ``max_bytes``, data is dropped in this order until they fit:
first non-alert records (heartbeats), oldest segments first, by rewriting those segments without them
(write to a temporary file, fsync, rename); only when no heartbeats are left are whole segments of alerts
deleted, oldest first. Every dropped record is counted per type in :attr:`Spool.dropped`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["SegmentInfo", "SegmentRead", "Spool", "SpoolError", "iter_records", "segment_paths"]

log = logging.getLogger(__name__)

_SEGMENT_RE = re.compile(r"^spool-(\d{12})\.jsonl\Z")
_MAX_SEGMENT_BYTES = 1024 * 1024
ALERT = "alert"


class SpoolError(Exception):
    """A batch could not be written (it is counted as dropped)."""


@dataclass(frozen=True)
class SegmentRead:
    """Complete lines read from a segment; ``closed``: nothing will ever be appended to it."""

    data: bytes
    closed: bool
    generation: int


@dataclass(frozen=True)
class SegmentInfo:
    """A segment as the shipper sees it: ``active`` means the agent may still append to it."""

    name: str
    size: int
    records: int
    active: bool
    generation: int


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    generation: int = 0  # +1 per compaction rewrite: byte offsets into older generations are meaningless

    @property
    def non_alerts(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind != ALERT)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def records(self) -> int:
        return sum(self.counts.values())


def segment_paths(directory: Path) -> list[Path]:
    """Segment files, oldest first."""
    found: list[tuple[int, Path]] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in directory.iterdir():
            m = _SEGMENT_RE.match(entry.name)
            if m:
                found.append((int(m.group(1)), entry))
    return [p for _, p in sorted(found)]


def _parse_line(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _kind(line: bytes) -> str:
    record = _parse_line(line)
    if record is None:
        return "corrupt"
    kind = record.get("type")
    return kind if isinstance(kind, str) else "unknown"


def iter_records(directory: Path) -> Iterator[dict[str, Any]]:
    """All complete, parseable records in write order."""
    for path in segment_paths(directory):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted by compaction or a shipper meanwhile
            continue
        for line in data.split(b"\n")[:-1]:
            record = _parse_line(line)
            if record is not None:
                yield record


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        # Several segments must fit under the bound, or dropping would always hit the newest data.
        self.segment_bytes = segment_bytes or max(1, min(_MAX_SEGMENT_BYTES, max_bytes // 8))
        self.dropped: Counter[str] = Counter()
        self._segments: list[_Segment] = []
        self._active: _Segment | None = None
        self._fh: BinaryIO | None = None
        self._next_seq = 1
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory and take stock of segments left by a previous run."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        for stale in self.directory.glob("spool-*.jsonl.tmp"):
            stale.unlink(missing_ok=True)  # an interrupted compaction; the original is intact
        with self._lock:
            self._segments = [self._scan(path) for path in segment_paths(self.directory)]
            self._next_seq = self._segments[-1].seq + 1 if self._segments else 1
            self._enforce()

    def close(self) -> None:
        with self._lock:
            self._close_active()

    def _scan(self, path: Path) -> _Segment:
        seg = _Segment(seq=int(path.name[6:18]), path=path)
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            # A torn write from a crash: cut it so appends and readers see whole lines only.
            log.warning("spool: cutting %d bytes of an incomplete record off %s", len(data) - end, path)
            with open(path, "r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())
            data = data[:end]
        seg.size = len(data)
        seg.counts.update(_kind(line) for line in data.split(b"\n")[:-1])
        return seg

    # -- writing ---------------------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    def dropped_counts(self) -> dict[str, int]:
        """A consistent copy of :attr:`dropped` for other threads (metrics, heartbeats)."""
        with self._lock:
            return dict(self.dropped)

    @property
    def record_count(self) -> int:
        """Complete records in the spool's segments (shipped ones included until their segment is deleted)."""
        with self._lock:
            return sum(s.records for s in self._segments)

    # -- shipping --------------------------------------------------------------------------------------

    def segments(self) -> list[SegmentInfo]:
        """The segments, oldest first."""
        with self._lock:
            return [SegmentInfo(s.name, s.size, s.records, s is self._active, s.generation) for s in self._segments]

    def read_segment(self, name: str, offset: int = 0, generation: int = 0) -> SegmentRead | None:
        """The complete lines of segment ``name`` from byte ``offset`` on; None when the segment is gone.

        ``offset`` counts in ``generation`` of the segment; when a compaction has rewritten it since (heartbeats
        stripped, so offsets moved), the whole segment is returned instead, with its new generation: callers
        then skip what they already shipped by the records' keys. Under the lock, so a compaction never
        happens halfway through a read."""
        with self._lock:
            seg = next((s for s in self._segments if s.name == name), None)
            if seg is None:
                return None
            if generation != seg.generation:
                offset = 0
            try:
                with open(seg.path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(max(0, seg.size - offset))
            except FileNotFoundError:
                return None
            read = SegmentRead(data, seg is not self._active, seg.generation)
        end = read.data.rfind(b"\n") + 1
        return SegmentRead(read.data[:end], read.closed, read.generation)

    def delete_shipped(self, name: str) -> bool:
        """Delete a closed segment whose every record was shipped (not counted as dropped).

        Returns False, deleting nothing, for the active segment or one that is already gone."""
        with self._lock:
            seg = next((s for s in self._segments if s.name == name), None)
            if seg is None or seg is self._active:
                return False
            self._delete(seg, count=False)
            _fsync_dir(self.directory)
            return True

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Write a batch durably; raises SpoolError (after counting the batch as dropped) on I/O failure."""
        if not records:
            return
        lines = [json.dumps(r, separators=(",", ":"), ensure_ascii=True).encode() + b"\n" for r in records]
        kinds = [str(r.get("type", "unknown")) for r in records]
        with self._lock:
            keep_lines: list[bytes] = []
            keep_kinds: list[str] = []
            for line, kind in zip(lines, kinds, strict=True):
                if len(line) > self.max_bytes // 2:
                    self.dropped[kind] += 1  # could never be kept without evicting everything else
                    log.warning("spool: dropping a %s record of %d bytes", kind, len(line))
                else:
                    keep_lines.append(line)
                    keep_kinds.append(kind)
            if keep_lines:
                self._write(b"".join(keep_lines), keep_kinds)
                try:
                    self._enforce()
                except OSError as exc:
                    # The batch itself is safely written; only the bound could not be restored this time.
                    raise SpoolError(f"spool compaction in {self.directory} failed: {exc}") from exc

    def _write(self, data: bytes, kinds: list[str]) -> None:
        seg = self._active
        if seg is not None and seg.size > 0 and seg.size + len(data) > self.segment_bytes:
            self._close_active()
            seg = None
        try:
            if seg is None:
                seg = self._new_segment()
            assert self._fh is not None
            before = seg.size
            try:
                self._fh.write(data)
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError:
                # Leave no torn line behind; if even that fails, the next batch starts a fresh segment.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fh.fileno(), before)
                self._close_active()
                raise
        except OSError as exc:
            self.dropped.update(kinds)
            raise SpoolError(f"spool write to {self.directory} failed: {exc.strerror or exc}") from exc
        seg.size += len(data)
        seg.counts.update(kinds)

    def _new_segment(self) -> _Segment:
        seg = _Segment(seq=self._next_seq, path=self.directory / f"spool-{self._next_seq:012d}.jsonl")
        self._fh = open(seg.path, "ab")  # noqa: SIM115 - stays open as the active segment
        self._next_seq += 1
        _fsync_dir(self.directory)
        self._segments.append(seg)
        self._active = seg
        return seg

    def _close_active(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
        self._fh = None
        self._active = None

    # -- bounding --------------------------------------------------------------------------------------

    def _enforce(self) -> None:
        while sum(s.size for s in self._segments) > self.max_bytes:
            closed = [s for s in self._segments if s is not self._active]
            with_heartbeats = [s for s in closed if s.non_alerts]
            if with_heartbeats:
                self._strip_non_alerts(with_heartbeats[0])
            elif self._active is not None and self._active.non_alerts:
                self._close_active()  # its heartbeats must go before any closed segment's alerts
            elif closed:
                self._delete(closed[0])
            elif self._active is not None and self._active.records:
                self._close_active()
            else:
                return

    def _strip_non_alerts(self, seg: _Segment) -> None:
        data = seg.path.read_bytes()
        kept = [line + b"\n" for line in data.split(b"\n")[:-1] if _kind(line) == ALERT]
        for kind, n in seg.counts.items():
            if kind not in (ALERT, "corrupt"):
                self.dropped[kind] += n
        if not kept:
            self._delete(seg, count=False)
            return
        tmp = seg.path.with_name(seg.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.writelines(kept)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, seg.path)
        _fsync_dir(self.directory)
        seg.size = sum(len(line) for line in kept)
        seg.counts = Counter({ALERT: len(kept)})
        seg.generation += 1

    def _delete(self, seg: _Segment, *, count: bool = True) -> None:
        if count:
            for kind, n in seg.counts.items():
                if kind != "corrupt":
                    self.dropped[kind] += n
            log.warning("spool full: dropping %d alert(s) in %s", seg.records, seg.name)
        seg.path.unlink(missing_ok=True)
        self._segments.remove(seg)
