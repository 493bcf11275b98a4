"""The hash chain of the event log: canonical JSON, the hash of one event, and the check of a whole chain.

Pure functions over plain values, so an auditor can re-check an exported log without a database. Each event's
hash covers its own fields and the previous event's hash::

    hash = sha256(prev_hash + "\\n" + canonical_json({seq, at, actor, kind, client, subject, payload}))

The first event's ``prev_hash`` is :data:`GENESIS_HASH`. ``at`` is kept as text so the bytes that were hashed are
the bytes that are stored, whatever the database does to timestamps.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

GENESIS_HASH = "0" * 64

# Fixed width and always UTC, so the text sorts like the instant and hashes the same everywhere.
_STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def canonical_json(obj: Any) -> str:
    """The one serialization that is hashed. NaN and infinities are refused: they are not JSON, and would not
    survive a round trip through another implementation."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def utc_stamp(moment: _dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return moment.astimezone(_dt.UTC).strftime(_STAMP_FORMAT)


def parse_stamp(text: str) -> _dt.datetime:
    return _dt.datetime.strptime(text, _STAMP_FORMAT).replace(tzinfo=_dt.UTC)


def event_hash(
    prev_hash: str,
    *,
    seq: int,
    at: str,
    actor: str,
    kind: str,
    client: str | None,
    subject: str | None,
    payload: Any,
) -> str:
    body = canonical_json(
        {"seq": seq, "at": at, "actor": actor, "kind": kind, "client": client, "subject": subject, "payload": payload}
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainRow:
    """One stored event as the database holds it; ``payload`` is the stored JSON text."""

    seq: int
    at: str
    actor: str
    kind: str
    client: str | None
    subject: str | None
    payload: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of checking the chain. ``first_broken`` is the lowest seq with a problem; ``head_hash`` is the
    hash of the last event, worth keeping outside the ledger: a chain cannot tell that its newest events were cut
    off, but a remembered head can."""

    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    first_broken: int | None = None
    head_seq: int = 0
    head_hash: str = GENESIS_HASH


class ChainChecker:
    """Checks rows fed in ascending seq order, one at a time, so a long log never has to fit in memory.

    Each row is judged twice: against its own content (was it edited?) and against its predecessor (is the link
    intact?). A gap in seq is reported as missing events; the broken link right after a gap is the same fault and
    is not reported again.
    """

    def __init__(self) -> None:
        self._expected_seq = 1
        self._prev_hash = GENESIS_HASH
        self._checked = 0
        self._problems: list[str] = []
        self._first_broken: int | None = None

    def _problem(self, seq: int, message: str) -> None:
        self._problems.append(message)
        if self._first_broken is None or seq < self._first_broken:
            self._first_broken = seq

    def feed(self, row: ChainRow) -> None:
        self._checked += 1
        gap = row.seq > self._expected_seq
        if gap:
            first, last = self._expected_seq, row.seq - 1
            if first == last:
                self._problem(first, f"event {first} is missing (deleted?)")
            else:
                self._problem(first, f"events {first} to {last} are missing (deleted?)")
        elif row.seq < self._expected_seq:
            # Only possible when the caller feeds rows out of order or the seq column lost its uniqueness.
            self._problem(row.seq, f"event {row.seq} ({row.kind}) appears twice or out of order")

        try:
            payload = json.loads(row.payload)
        except ValueError:
            self._problem(row.seq, f"event {row.seq} ({row.kind}) was altered: payload is not valid JSON")
        else:
            recomputed = event_hash(
                row.prev_hash,
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                kind=row.kind,
                client=row.client,
                subject=row.subject,
                payload=payload,
            )
            if recomputed != row.hash:
                self._problem(row.seq, f"event {row.seq} ({row.kind}) was altered: hash mismatch")

        if not gap and row.prev_hash != self._prev_hash:
            if row.seq == 1:
                self._problem(row.seq, f"event 1 ({row.kind}) does not start the chain: prev_hash is not genesis")
            else:
                self._problem(
                    row.seq,
                    f"event {row.seq} ({row.kind}) does not follow event {row.seq - 1}: prev_hash mismatch "
                    "(inserted, re-ordered or rewritten?)",
                )
        self._prev_hash = row.hash
        self._expected_seq = max(self._expected_seq, row.seq + 1)

    def report(self) -> VerifyReport:
        return VerifyReport(
            ok=not self._problems,
            checked=self._checked,
            problems=list(self._problems),
            first_broken=self._first_broken,
            head_seq=self._expected_seq - 1,
            head_hash=self._prev_hash,
        )


def check_chain(rows: Iterable[ChainRow]) -> VerifyReport:
    checker = ChainChecker()
    for row in rows:
        checker.feed(row)
    return checker.report()
