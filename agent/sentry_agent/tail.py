"""Poll-based ``tail -F`` for one file, plus durable offsets so a restart neither re-reads nor misses lines.

Behaviour of :class:`FileTailer`:

- First sight of a file that exists when the agent starts, with no saved offset: start at its end (old
  history is not re-judged). A file that appears after start is new, so it is read from its beginning.
- A saved offset is used when the file is still the same inode and at least that long; otherwise the file
  was rotated or truncated while the agent was down and is read from its beginning.
- Rename rotation (``mv log log.1; create log``): the old file is drained, then the new one read from its
  beginning. The old handle is kept for ``rotate_grace_seconds`` because writers often keep appending to the
  renamed file until they reopen (logrotate ``postrotate``); those lines would otherwise be lost.
- Truncation (``copytruncate``): the file shrank below our position, so reading restarts at 0. Limitation
  shared with ``tail -F``: if the file grows past the old position again within one poll interval, the
  truncation is not noticed and the lines before the old position are skipped.
- A missing file is not an error; it is looked for on every poll.

Offsets only cover complete lines: a trailing partial line is re-read after a restart rather than lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["FileTailer", "OffsetStore", "TailPosition"]

log = logging.getLogger(__name__)

# One pathological line (a binary blob written to a log) must not grow memory or regex time without bound;
# longer lines are cut into pieces of this size.
MAX_LINE_BYTES = 64 * 1024
_READ_CHUNK = 256 * 1024
# A large backlog (a saved offset far behind after downtime) is caught up over several polls instead of being
# loaded into memory at once.
MAX_READ_PER_POLL = 8 * 1024 * 1024


@dataclass(frozen=True)
class TailPosition:
    """Where reading stopped: the file identity and the offset just past the last complete line."""

    path: str
    dev: int
    ino: int
    offset: int


class _Open:
    """One open file being read, with its unterminated trailing bytes."""

    def __init__(self, fh: BinaryIO, st: os.stat_result) -> None:
        self.fh = fh
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.partial = b""
        self.drained = False

    def same_file(self, st: os.stat_result) -> bool:
        return (self.dev, self.ino) == (st.st_dev, st.st_ino)

    @property
    def committed(self) -> int:
        return self.fh.tell() - len(self.partial)

    def read_lines(self) -> list[str]:
        lines: list[str] = []
        budget = MAX_READ_PER_POLL
        self.drained = False
        while budget > 0:
            chunk = self.fh.read(min(_READ_CHUNK, budget))
            if not chunk:
                self.drained = True
                return lines
            budget -= len(chunk)
            parts = (self.partial + chunk).split(b"\n")
            self.partial = parts.pop()
            while len(self.partial) > MAX_LINE_BYTES:
                # Bound the buffer: the head is judged now, the rest follows as further pieces.
                parts.append(self.partial[:MAX_LINE_BYTES])
                self.partial = self.partial[MAX_LINE_BYTES:]
            for part in parts:
                starts = range(0, len(part) or 1, MAX_LINE_BYTES)
                lines.extend(_decode(part[i : i + MAX_LINE_BYTES]) for i in starts)
        return lines

    def flush_partial(self) -> list[str]:
        """The file will not be read again: an unterminated last line is still a line."""
        if not self.partial:
            return []
        line, self.partial = _decode(self.partial), b""
        return [line]


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


class FileTailer:
    def __init__(
        self,
        path: Path,
        saved: TailPosition | None = None,
        *,
        rotate_grace_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._saved = saved if saved is not None and saved.path == str(path) else None
        self._first_poll = True
        self._cur: _Open | None = None
        self._old: _Open | None = None
        self._old_deadline = 0.0
        self._grace = rotate_grace_seconds
        self._clock = clock
        self.rotations = 0
        self.truncations = 0
        self.error: OSError | None = None

    def poll(self) -> list[str]:
        """Return the complete lines appended since the last poll (oldest first).

        Never raises: an I/O problem (file exists but cannot be opened or read) is left in :attr:`error` for
        this poll, and the lines read before it are still returned; the next poll retries.
        """
        lines: list[str] = []
        try:
            self._poll(lines)
            self.error = None
        except OSError as exc:
            self.error = exc
        return lines

    def _poll(self, lines: list[str]) -> None:
        if self._old is not None:
            lines += self._old.read_lines()
            if self._clock() >= self._old_deadline and self._old.drained:
                lines += self._old.flush_partial()
                self._close_old()
        if self._cur is not None:
            lines += self._cur.read_lines()

        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            # Absent at start: whenever it appears, all of it is new.
            self._first_poll = False
            return

        if self._cur is None:
            first = self._first_poll
            self._cur = self._open(lambda fst: self._initial_offset(fst, first))
            # Only now: a file that exists but could not be opened yet is still "seen at start".
            self._first_poll = False
        elif not self._cur.same_file(st):
            # Open first: if that fails, nothing has moved and the next poll retries the same switch.
            new = self._open(lambda _fst: 0)
            self.rotations += 1
            log.info("%s: rotated, following the new file", self.path)
            self._close_old()
            self._old, self._old_deadline = self._cur, self._clock() + self._grace
            self._cur = new
        elif st.st_size < self._cur.fh.tell():
            self.truncations += 1
            log.info("%s: truncated, reading from the start", self.path)
            self._cur.fh.seek(0)
            self._cur.partial = b""
        lines += self._cur.read_lines()

    def _initial_offset(self, st: os.stat_result, first: bool) -> int:
        saved, self._saved = self._saved, None
        if saved is not None:
            if (saved.dev, saved.ino) == (st.st_dev, st.st_ino) and saved.offset <= st.st_size:
                return saved.offset
            log.info("%s: changed while the agent was stopped, reading it from the start", self.path)
            return 0
        return st.st_size if first else 0

    def _open(self, offset_for: Callable[[os.stat_result], int]) -> _Open:
        fh = open(self.path, "rb")  # noqa: SIM115 - kept open across polls, closed in close()
        try:
            # Decide on the fstat of what was actually opened: the path may have been rotated since stat().
            fst = os.fstat(fh.fileno())
            fh.seek(offset_for(fst))
        except OSError:
            fh.close()
            raise
        return _Open(fh, fst)

    def position(self) -> TailPosition | None:
        if self._cur is None:
            return self._saved
        return TailPosition(str(self.path), self._cur.dev, self._cur.ino, self._cur.committed)

    def _close_old(self) -> None:
        if self._old is not None:
            with contextlib.suppress(OSError):
                self._old.fh.close()
            self._old = None

    def close(self) -> None:
        self._close_old()
        if self._cur is not None:
            with contextlib.suppress(OSError):
                self._cur.fh.close()
            self._cur = None


class OffsetStore:
    """``<state_dir>/offsets.json``: ``{"version": 1, "sources": {name: {path, dev, ino, offset}}}``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "offsets.json"

    def load(self) -> dict[str, TailPosition]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            result: dict[str, TailPosition] = {}
            for name, item in data["sources"].items():
                pos = TailPosition(str(item["path"]), int(item["dev"]), int(item["ino"]), int(item["offset"]))
                if pos.offset >= 0:
                    result[str(name)] = pos
            return result
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A damaged state file must not keep the agent down; starting at the end of each file is the
            # same as a first install.
            log.warning("ignoring unreadable offsets file %s: %s", self.path, exc)
            return {}

    def save(self, positions: dict[str, TailPosition]) -> None:
        data = {
            "version": 1,
            "sources": {
                name: {"path": p.path, "dev": p.dev, "ino": p.ino, "offset": p.offset}
                for name, p in sorted(positions.items())
            },
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
