"""The shipper: sends the spool to Sentry's collector, in order, and deletes what the collector acknowledged.

It runs in its own thread next to the daemon's loop and follows ``docs/telemetry-protocol.md``:

- Reads the spool's segments in order through :class:`~sentry_agent.spool.Spool` (which owns the format and
  the lock) and sends ``POST /v1/ingest`` batches of at most 500 records or 256 KiB of raw JSON, gzip'ed.
  A full batch goes at once; a partial one waits at most ``ship_interval_seconds``.
- TLS with the collector's certificate pinned: after the handshake the peer certificate's SHA-256 (of its
  DER bytes) must equal ``collector_cert_sha256``, else nothing (not even the token) is sent.
- Acknowledgement: a 200 answer means every record not listed as rejected is durably stored. The shipper
  advances its cursor over the acknowledged prefix of the batch; a rejected record is sent again (with
  backoff) and, once rejected 3 times, moved to ``state_dir/quarantine.jsonl`` (bounded, counted) so it
  cannot block the spool forever. A segment is deleted only when it is closed and every record in it was
  acknowledged or quarantined; the cursor (segment, boot, seq) is kept in ``state_dir/shipper.json`` for
  the segments that cannot be deleted yet. Skipping by key rather than by byte offset survives both a crash
  and the spool's compaction rewriting a segment. Delivery is at least once; the collector's unique key
  ``(client, host, boot, seq)`` makes storage exactly once.
- Retries: capped exponential backoff with full jitter (1 s base, 60 s cap) on connection errors, timeouts,
  a pin mismatch, 401/403 (a wrong token must not make the agent hammer the collector), 429 and 5xx. A 413
  halves the batch; a single record still too large counts as a rejection.
- Every network wait (connect, TLS, each read and write) is bounded by ``collector_timeout_seconds``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .batches import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    MAX_REJECTS,
    Backoff,
    Cursor,
    Entry,
    Quarantine,
    encode_batch,
    key_of,
    parse_ack,
    take_batch,
)
from .config import AgentConfig
from .spool import Spool
from .transport import HttpsTransport, Transport, TransportError, error_text

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_REJECTS",
    "Backoff",
    "Cursor",
    "Entry",
    "HttpsTransport",
    "Quarantine",
    "Shipper",
    "Transport",
    "TransportError",
    "take_batch",
]

log = logging.getLogger(__name__)

# How often an idle shipper looks for new records: the ship interval counts from when a record is first seen,
# so this bounds how much later than written that is (cheap: a read of the spool from the acknowledged offset).
IDLE_POLL_SECONDS = 0.25
STATE_FILE = "shipper.json"
QUARANTINE_FILE = "quarantine.jsonl"


# -- the shipper -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one shipping step did; ``delay``: how long to wait before the next one."""

    sent: int = 0
    acked: int = 0
    quarantined: int = 0
    status: int | None = None
    error: str | None = None
    delay: float = 0.0


class Shipper:
    def __init__(
        self,
        config: AgentConfig,
        spool: Spool,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        max_records: int = MAX_BATCH_RECORDS,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self.config, self.spool = config, spool
        if transport is None:
            host, port = config.collector_address
            transport = HttpsTransport(
                host, port, config.collector_cert_sha256, config.collector_token, config.collector_timeout_seconds
            )
        self.transport = transport
        self._clock, self._wall = clock, wall_clock
        self.backoff = Backoff(rng=rng)
        self.max_records, self.max_bytes = max_records, max_bytes
        self._limit = max_records  # lowered by a 413, back to max_records after a success
        self.state_path = config.state_dir / STATE_FILE
        self.quarantine = Quarantine(config.state_dir / QUARANTINE_FILE, config.quarantine_max_bytes)
        self.cursor = Cursor()
        self._rejects: dict[tuple[str, str | None, int | None, int], int] = {}
        self._lock = threading.Lock()
        self._stats = {"shipped": 0, "quarantined": 0, "batches": 0, "errors": 0}
        self.last_error: str | None = None
        self._waiting_since: float | None = None
        self._stop = threading.Event()
        self._flush_deadline = 0.0
        self._thread: threading.Thread | None = None

    # -- state ---------------------------------------------------------------------------------------

    def load_state(self) -> None:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}  # no state (first start) or a torn one: resend from the start; the collector dedups
        self.cursor = Cursor.from_json(data.get("cursor") if isinstance(data, dict) else None)
        quarantined = data.get("quarantined", 0) if isinstance(data, dict) else 0
        self._stats["quarantined"] = quarantined if isinstance(quarantined, int) else 0
        # What a previous run left behind has waited long enough: it goes at once.
        self._waiting_since = self._clock() - self.config.ship_interval_seconds
        names = [s.name for s in self.spool.segments()]
        # Segment numbers only grow while any segment exists; if every segment is older than the cursor the
        # spool was wiped and numbering restarted, and the cursor would skip new data: start over instead.
        if self.cursor.segment and names and max(names) < self.cursor.segment:
            log.warning("shipper: spool restarted below the saved position; sending it all again")
            self.cursor = Cursor()

    def save_state(self) -> None:
        data = {"cursor": self.cursor.to_json(), "quarantined": self.quarantined}
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.state_path)
        except OSError as exc:  # only costs resending (deduplicated) after a restart
            log.error("shipper: cannot save %s: %s", self.state_path, exc.strerror or exc)

    @property
    def quarantined(self) -> int:
        with self._lock:
            return self._stats["quarantined"]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def pending_records(self) -> int:
        """Records in the spool not acknowledged yet (an estimate good for heartbeats)."""
        with self._lock:
            cursor = replace(self.cursor)
        done = 0
        read = self.spool.read_segment(cursor.segment, 0, -1)  # generation -1: always the whole segment
        if read is not None:
            done = sum(1 for e in self._entries(cursor.segment, read.data, 0, read) if cursor.covers(e))
        return max(0, self.spool.record_count - done)

    # -- reading the spool ---------------------------------------------------------------------------

    def _entries(self, name: str, data: bytes, start: int, read: Any) -> list[Entry]:
        entries: list[Entry] = []
        pos = start
        for line in data.split(b"\n")[:-1]:
            pos += len(line) + 1
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the spool's readers skip lines that do not parse; so does the shipper
            if not isinstance(record, dict):
                continue
            boot, seq = key_of(record)
            entries.append(Entry(name, read.generation, pos, line, boot, seq))
        if entries and read.closed:
            last = entries[-1]
            entries[-1] = Entry(last.segment, last.generation, last.end, last.line, last.boot, last.seq, True)
        return entries

    def pending(self, limit: int) -> list[Entry]:
        """Up to ``limit`` entries after the cursor, in order; deletes closed segments already shipped."""
        out: list[Entry] = []
        for seg in self.spool.segments():
            if len(out) >= limit:
                break
            if seg.name < self.cursor.segment:
                self.spool.delete_shipped(seg.name)  # acknowledged earlier; its deletion failed or was cut short
                continue
            here = seg.name == self.cursor.segment
            offset = self.cursor.offset if here and self.cursor.generation == seg.generation else 0
            read = self.spool.read_segment(seg.name, offset, seg.generation)
            if read is None:
                continue
            start = offset if read.generation == seg.generation else 0
            fresh = [e for e in self._entries(seg.name, read.data, start, read) if not self.cursor.covers(e)]
            if not fresh and read.closed:
                self._finish_segment(seg.name)  # every record in it acknowledged (or none parseable)
                continue
            out.extend(fresh)
        return out[:limit]

    def _finish_segment(self, name: str) -> None:
        if self.spool.delete_shipped(name):
            log.debug("shipper: %s fully acknowledged, deleted", name)

    # -- one step ------------------------------------------------------------------------------------

    def ship_once(self, *, force: bool = False) -> Attempt:
        """Send the next batch if one is due (full, or its oldest record waited ship_interval_seconds)."""
        entries = self.pending(self._limit)
        if not entries:
            self._waiting_since = None
            return Attempt(delay=min(IDLE_POLL_SECONDS, self.config.ship_interval_seconds))
        now = self._clock()
        batch = take_batch(entries, self._limit, self.max_bytes)
        full = len(batch) < len(entries) or len(batch) >= self._limit
        if self._waiting_since is None:
            self._waiting_since = now
        waited = now - self._waiting_since
        if not (full or force or waited >= self.config.ship_interval_seconds):
            return Attempt(delay=self.config.ship_interval_seconds - waited)
        return self._send(batch)

    def _send(self, batch: list[Entry]) -> Attempt:
        keyed = [e for e in batch if e.keyed]
        status: int | None = None
        rejected: dict[int, str] = {}
        if keyed:
            try:
                status, body = self.transport.post(encode_batch(self.config.host, keyed))
            except TransportError as exc:
                return self._failed(str(exc))
            if status == 413 and len(keyed) > 1:
                self._limit = max(1, len(batch) // 2)
                return Attempt(sent=len(keyed), status=status, delay=0.0)
            if status == 413:
                rejected = {0: "413: record too large for the collector"}
            elif status != 200:
                return self._failed(f"collector answered {status}: {error_text(body)}", status)
            else:
                parsed = parse_ack(body, len(keyed))
                if parsed is None:
                    return self._failed("collector answered 200 without a valid acknowledgement", status)
                rejected = parsed
        return self._acknowledge(batch, keyed, rejected, status)

    def _acknowledge(
        self, batch: list[Entry], keyed: list[Entry], rejected: dict[int, str], status: int | None
    ) -> Attempt:
        index = {id(e): i for i, e in enumerate(keyed)}
        acked = quarantined = 0
        blocked = False
        for entry in batch:
            reason: str | None = None
            if not entry.keyed:
                reason = "no idempotency key (boot, seq): written by an agent older than the shipper"
            elif index[id(entry)] in rejected:
                key = (entry.segment, entry.boot, entry.seq, entry.generation)
                tries = self._rejects.get(key, 0) + 1
                if len(self._rejects) > 10_000:  # keys of records whose segment was compacted meanwhile
                    self._rejects.clear()
                self._rejects[key] = tries
                if tries < MAX_REJECTS:
                    blocked = True
                    break
                reason = f"rejected {tries} times: {rejected[index[id(entry)]]}"
                del self._rejects[key]
            if reason is not None:
                self._quarantine(entry, reason)
                quarantined += 1
            else:
                acked += 1
            with self._lock:
                self.cursor.advance(entry)
            if entry.last_of_closed:
                self._finish_segment(entry.segment)
        with self._lock:
            self._stats["shipped"] += acked
            self._stats["batches"] += 1 if keyed else 0
        if acked or quarantined:
            self.save_state()
        self._waiting_since = None
        if blocked:
            return Attempt(len(keyed), acked, quarantined, status, "records rejected", self.backoff.next())
        self.backoff.reset()
        self._limit = self.max_records
        self.last_error = None
        return Attempt(len(keyed), acked, quarantined, status)

    def _quarantine(self, entry: Entry, reason: str) -> None:
        log.warning("shipper: quarantining a record of %s: %s", entry.segment, reason)
        try:
            self.quarantine.add(entry, reason, self._wall())
        except OSError as exc:
            log.error("shipper: cannot write %s: %s", self.quarantine.path, exc.strerror or exc)
        with self._lock:
            self._stats["quarantined"] += 1

    def _failed(self, message: str, status: int | None = None) -> Attempt:
        if message != self.last_error:  # once per distinct problem, not once per retry
            log.warning("shipper: %s (retrying with backoff)", message)
        self.last_error = message
        with self._lock:
            self._stats["errors"] += 1
        return Attempt(status=status, error=message, delay=self.backoff.next())

    # -- the thread ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.load_state()
        self._thread = threading.Thread(target=self._run, name="sentry-shipper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            if self._stop.is_set() and self.last_error is not None:
                return  # the collector is not answering: no flush that would only wait for a timeout
            try:
                attempt = self.ship_once(force=self._stop.is_set())
            except Exception as exc:  # the thread must outlive anything one step hits
                log.exception("shipper step failed: %s", exc)
                attempt = Attempt(error=str(exc), delay=self.backoff.next())
            if self._stop.is_set():
                # Stopping: keep sending only while it works (the stop heartbeat goes out), then leave.
                if attempt.error is not None or not attempt.sent or self._clock() >= self._flush_deadline:
                    return
                continue
            if attempt.delay > 0:
                self._stop.wait(attempt.delay)

    def stop(self, flush_seconds: float = 2.0) -> None:
        """Stop the thread, after it sent what is due (the stop heartbeat) if the collector takes it at once."""
        self._flush_deadline = self._clock() + flush_seconds
        self._stop.set()
        if self._thread is not None:
            # Bounded: the step in progress ends within the network timeout, the flush is one more step.
            self._thread.join(timeout=2 * self.config.collector_timeout_seconds + flush_seconds)
            self._thread = None
        self.transport.close()
